//go:build unix && !nellis_portable

package wsconn

import "syscall"

// oneWrite is one write(2) attempt, as the function RawConn.Write calls;
// built once per socket and reused under its write lock, since a closure
// per write would cost three allocations.
type oneWrite struct {
	f    []byte
	n    int
	err  error
	call func(fd uintptr) bool // o.write, bound once
}

func (o *oneWrite) write(fd uintptr) bool {
	o.n, o.err = syscall.Write(int(fd), o.f)
	return true // one attempt: never wait here
}

// wouldBlock: the kernel took nothing now; the writer will wait for room.
func wouldBlock(err error) bool { return err == syscall.EAGAIN || err == syscall.EINTR }

// InlineWrites says whether a sender can write a frame itself (else
// every frame waits in the queue for the writer goroutine).
const InlineWrites = true
