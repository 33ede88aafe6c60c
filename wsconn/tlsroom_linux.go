//go:build linux && !nellis_portable

package wsconn

import (
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// roomCheck asks whether a write of n bytes to the socket would return at
// once, without waiting for room. Linux's TCP waits when the memory it has
// queued for the socket (sent and unacknowledged, or not yet sent) reaches
// its send buffer; SO_MEMINFO reports both, so a write that leaves
// generous room does not wait. A tls.Conn has no non-blocking write, and a
// write that times out mid-record breaks the connection for good, so this
// is how the sender of a TLS frame knows it may write the frame itself
// (writer.go, tryWriteTLS). Like oneWrite it is built once per socket and
// used under its write lock: a closure per check would cost an allocation.
//
// The kernel is asked once per burst, not once per frame: the getsockopt
// was 16 % of the gateway's CPU at 10,000 TLS clients (the c10k TLS bench
// row's profile). What it answers is kept as a budget, and each write the
// sender makes is charged to it: the room left only grows as the client
// acknowledges, so the budget stays a lower bound of the real room as long
// as every write is charged (the writer goroutine's and the close's spend
// it all: forget). The kernel is asked again when the budget does not
// cover a frame, or after budgetLife. The send buffer shrinks only under
// the system's TCP memory pressure, when even a fresh answer would not
// keep a write from waiting for memory; the write deadline is the net then,
// as it always was.
type roomCheck struct {
	ok   bool
	call func(fd uintptr) // r.check, bound once

	budget int64 // bytes the socket is known to take at once
	asked  int64 // unix ns when the kernel said so
}

// budgetLife bounds how long a budget is trusted without asking the
// kernel: a socket of the c10k row, sent 2 frames a second, asks once in
// 20 frames; a busier one spends its budget first.
const budgetLife = 10 * time.Second

// chargeFor is what a write of n bytes costs the budget, at least what
// the kernel counts for it: the bytes, and about 830 bytes for each
// segment's buffer (sk_buff, measured on this machine's kernel). A write
// makes one, and one more per buffer it fills: those hold up to 64 KiB
// where the kernel segments late (GSO, its default), an MSS elsewhere,
// more than 830 bytes on any usual path.
func chargeFor(n int) int64 { return 2*int64(n) + 2048 }

// check asks the kernel; its answer is read on the stack, so that an idle
// socket keeps no room for it.
func (r *roomCheck) check(fd uintptr) {
	var mem [unix.SK_MEMINFO_VARS]uint32
	size := uint32(unsafe.Sizeof(mem))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&size)), 0)
	r.ok = errno == 0 && size >= 4*(unix.SK_MEMINFO_WMEM_QUEUED+1)
	if r.ok {
		r.budget = int64(mem[unix.SK_MEMINFO_SNDBUF]) - int64(mem[unix.SK_MEMINFO_WMEM_QUEUED]) - segmentsOverhead
	}
}

// takes reports whether the kernel takes n bytes on raw's socket at once,
// and if so charges them: the caller writes them now.
func (r *roomCheck) takes(raw syscall.RawConn, n int, now time.Time) bool {
	cost, at := chargeFor(n), now.UnixNano()
	if r.budget < cost || at-r.asked >= int64(budgetLife) {
		if r.call == nil {
			r.call = r.check
		}
		r.ok, r.budget, r.asked = false, 0, at
		if err := raw.Control(r.call); err != nil || !r.ok {
			r.budget = 0
			return false
		}
		if r.budget < cost {
			return false
		}
	}
	r.budget -= cost
	return true
}

// forget drops the budget: a write it was not charged (the writer's) has
// spent an unknown part of it.
func (r *roomCheck) forget() { r.budget = 0 }

// segmentsOverhead is room kept free beyond the charged writes, for what
// the kernel counts that no write of ours is charged for (crypto/tls's
// own small records, a key update's answer, written by the reader).
const segmentsOverhead = 4096
