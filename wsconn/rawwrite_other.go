//go:build !unix || nellis_portable

package wsconn

import "errors"

// oneWrite elsewhere takes nothing: without a non-blocking write(2) every
// frame goes through the writer goroutine, which writes with a deadline.
type oneWrite struct {
	f    []byte
	n    int
	err  error
	call func(fd uintptr) bool
}

var errNoRawWrite = errors.New("wsconn: no non-blocking write here")

func (o *oneWrite) write(uintptr) bool {
	o.n, o.err = 0, errNoRawWrite
	return true
}

func wouldBlock(err error) bool { return err == errNoRawWrite }

// InlineWrites says whether a sender can write a frame itself (else
// every frame waits in the queue for the writer goroutine).
const InlineWrites = false
