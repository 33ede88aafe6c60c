package wsrelay

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"syscall"
)

// An idle socket's reader waits for the next byte on a shallow stack, not
// inside gorilla's ReadMessage: the garbage collector then shrinks the
// goroutine's stack to its minimum, which roughly halves what an idle
// socket costs. The relay hands gorilla its own small bufio.Reader at
// hijack time so it can tell whether a message is already buffered.

// idleWaiter blocks until a socket has something to read.
type idleWaiter struct {
	br  *bufio.Reader   // gorilla's read buffer
	raw syscall.RawConn // nil when the socket is not a plain TCP one (TLS)
}

// wait returns when a byte is buffered or readable (or the socket failed,
// which the following read reports). The read deadline applies.
func (w *idleWaiter) wait() {
	if w == nil || w.raw == nil || w.br.Buffered() > 0 {
		return
	}
	_ = w.raw.Read(func(fd uintptr) bool { return readable(fd) })
}

// hijackable hands gorilla a writer it can hijack. Caddy wraps the
// ResponseWriter in types that lack http.Hijacker but implement
// Unwrap() http.ResponseWriter, which http.ResponseController follows.
// The hijacked reader is replaced by a small one the relay can inspect.
func hijackable(w http.ResponseWriter, readBufferSize int) (http.ResponseWriter, *idleWaiter) {
	iw := &idleWaiter{}
	return hijackWriter{ResponseWriter: w, rc: http.NewResponseController(w), size: readBufferSize, iw: iw}, iw
}

type hijackWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	size int
	iw   *idleWaiter
}

func (h hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := h.rc.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Reader.Buffered() > 0 {
		// A client may not talk before the handshake's answer.
		c.Close()
		return nil, nil, errors.New("client sent data before the handshake completed")
	}
	h.iw.br = bufio.NewReaderSize(c, h.size)
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			h.iw.raw = raw
		}
	}
	return c, bufio.NewReadWriter(h.iw.br, brw.Writer), nil
}

func (h hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }
