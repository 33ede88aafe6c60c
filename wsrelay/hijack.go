package wsrelay

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// hijacked is what the relay keeps of a socket's connection beyond
// gorilla's view of it: the read buffer it handed gorilla, so it can tell
// whether a message is already buffered, and the file descriptor to park
// an idle socket on (nil when the connection has none the relay can poll).
type hijacked struct {
	br  *bufio.Reader   // gorilla reads through it; emptied while parked (park.go)
	in  net.Conn        // what br reads from
	raw syscall.RawConn // also for the non-blocking first write (writer.go)
	out net.Conn        // where frames are written: the TCP conn under a wrapper, or the conn
	wmu sync.Mutex      // one write at a time, gorilla's control replies included
	// once is the non-blocking write's state (writer.go), guarded by wmu.
	once oneWrite
}

// lockedConn is the connection as gorilla sees it. The relay writes its
// frames itself; gorilla still answers pings and closes on its own, from
// the reader, so its writes take the socket's write lock too.
type lockedConn struct {
	net.Conn
	hj *hijacked
}

func (l lockedConn) Write(p []byte) (int, error) {
	l.hj.wmu.Lock()
	defer l.hj.wmu.Unlock()
	return l.Conn.Write(p)
}

func (l lockedConn) SetWriteDeadline(t time.Time) error {
	l.hj.wmu.Lock()
	defer l.hj.wmu.Unlock()
	return l.Conn.SetWriteDeadline(t)
}

// hijackable hands gorilla a writer it can hijack. Caddy wraps the
// ResponseWriter in types that lack http.Hijacker but implement
// Unwrap() http.ResponseWriter, which http.ResponseController follows.
// The hijacked reader is replaced by a small one the relay can inspect.
func hijackable(w http.ResponseWriter, readBufferSize int, unwrap func(net.Conn) net.Conn) (http.ResponseWriter, *hijacked) {
	hj := &hijacked{}
	return hijackWriter{ResponseWriter: w, rc: http.NewResponseController(w), size: readBufferSize, unwrap: unwrap, hj: hj}, hj
}

type hijackWriter struct {
	http.ResponseWriter
	rc     *http.ResponseController
	size   int
	unwrap func(net.Conn) net.Conn
	hj     *hijacked
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
	h.hj.br, h.hj.in = bufio.NewReaderSize(c, h.size), c
	h.hj.out = c
	if plain, raw := plainConnOf(c, h.unwrap); raw != nil {
		h.hj.out, h.hj.raw = plain, raw
		h.hj.once.call = h.hj.once.write
	}
	return lockedConn{Conn: c, hj: h.hj}, bufio.NewReadWriter(h.hj.br, brw.Writer), nil
}

func (h hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// plainConnOf is the TCP (or Unix) connection under c and its file
// descriptor, or nil. Only a connection that
// buffers nothing itself qualifies: readiness of the descriptor must mean
// a message is coming. A *tls.Conn keeps decrypted bytes the relay cannot
// see, so it never qualifies; unwrap may look through a server's wrapper
// that passes reads straight on (the module knows Caddy's).
func plainConnOf(c net.Conn, unwrap func(net.Conn) net.Conn) (net.Conn, syscall.RawConn) {
	if unwrap != nil {
		if inner := unwrap(c); inner != nil {
			c = inner
		}
	}
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, nil
	}
	return c, raw
}
