//go:build linux && !nellis_portable

package wsconn

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// roomCheck asks whether a write of n bytes to the socket would return at
// once, without waiting for room. Linux's TCP waits when the memory it has
// queued for the socket (sent and unacknowledged, or not yet sent) reaches
// its send buffer; SO_MEMINFO reports both, so a write that leaves
// generous room (twice n, plus the overhead of the segments' buffers) does
// not wait. A tls.Conn has no non-blocking write, and a write that times
// out mid-record breaks the connection for good, so this is how the sender
// of a TLS frame knows it may write the frame itself (writer.go,
// tryWriteTLS). Like oneWrite it is built once per socket and used under
// its write lock: a closure per check would cost an allocation.
type roomCheck struct {
	n    int
	ok   bool
	mem  [unix.SK_MEMINFO_VARS]uint32
	call func(fd uintptr) // r.check, bound once
}

func (r *roomCheck) check(fd uintptr) {
	size := uint32(unsafe.Sizeof(r.mem))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&r.mem[0])), uintptr(unsafe.Pointer(&size)), 0)
	r.ok = errno == 0 && size >= 4*(unix.SK_MEMINFO_WMEM_QUEUED+1) &&
		int64(r.mem[unix.SK_MEMINFO_WMEM_QUEUED])+2*int64(r.n)+segmentsOverhead <= int64(r.mem[unix.SK_MEMINFO_SNDBUF])
}

// takes reports whether the kernel takes n bytes on raw's socket at once.
func (r *roomCheck) takes(raw syscall.RawConn, n int) bool {
	if r.call == nil {
		r.call = r.check
	}
	r.n, r.ok = n, false
	if err := raw.Control(r.call); err != nil {
		return false
	}
	return r.ok
}

// segmentsOverhead bounds what the kernel counts beyond the data for the
// buffers of a write's segments.
const segmentsOverhead = 4096
