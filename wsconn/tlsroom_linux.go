//go:build linux && !nellis_portable

package wsconn

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelTakes reports whether a write of n bytes to the socket would
// return at once, without waiting for room. Linux's TCP waits when the
// memory it has queued for the socket (sent and unacknowledged, or not
// yet sent) reaches its send buffer; SO_MEMINFO reports both, so a write
// that leaves generous room (twice n, plus the overhead of the segments'
// buffers) does not wait. A tls.Conn has no non-blocking write, and a
// write that times out mid-record breaks the connection for good, so this
// is how the sender of a TLS frame knows it may write the frame itself
// (writer.go, tryWriteTLS).
func kernelTakes(raw syscall.RawConn, n int) bool {
	ok := false
	_ = raw.Control(func(fd uintptr) {
		var mem [unix.SK_MEMINFO_VARS]uint32
		size := uint32(unsafe.Sizeof(mem))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 || size < 4*(unix.SK_MEMINFO_WMEM_QUEUED+1) {
			return
		}
		ok = int64(mem[unix.SK_MEMINFO_WMEM_QUEUED])+2*int64(n)+segmentsOverhead <= int64(mem[unix.SK_MEMINFO_SNDBUF])
	})
	return ok
}

// segmentsOverhead bounds what the kernel counts beyond the data for the
// buffers of a write's segments.
const segmentsOverhead = 4096
