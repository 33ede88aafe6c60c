package wsconn

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// hijacked is what the transport keeps of a socket's connection beyond
// gorilla's view of it: the read buffer it handed gorilla, so it can tell
// whether a message is already buffered, and the file descriptor to park
// an idle socket on (nil when the connection has none it can poll).
type hijacked struct {
	br  *bufio.Reader   // gorilla reads through it; emptied while parked (park.go)
	in  net.Conn        // what br reads from
	raw syscall.RawConn // the TCP descriptor: to park on, and for the inline write (writer.go)
	out net.Conn        // where frames are written: the TCP conn under a wrapper, or the conn
	// tls inspects the *tls.Conn the socket reads through (in and out),
	// for what it buffers (tlsinput.go); nil on plain TCP, or where its
	// layout is unknown, in which case raw is nil too.
	tls *tlsInput
	wmu sync.Mutex // one write at a time
	// once is the non-blocking write's state (writer.go), guarded by wmu;
	// room the inline TLS write's (tlsroom_linux.go).
	once oneWrite
	room roomCheck
	// wdl is the write deadline set on out (unix ns, 0 for none),
	// guarded by wmu: after an inline TLS write it stays, for the next
	// (standingDeadline).
	wdl int64

	// s is the socket, set once the handshake's answer is out: every
	// later write of gorilla's goes through it (readerConn.Write). Set
	// before the reader goroutine starts, the only other writer's.
	s *Socket
}

// setWriteDeadline sets out's write deadline; under wmu.
func (hj *hijacked) setWriteDeadline(t time.Time) error {
	hj.wdl = 0
	if !t.IsZero() {
		hj.wdl = t.UnixNano()
	}
	return hj.out.SetWriteDeadline(t)
}

// standingDeadline gives an inline TLS write (writer.go, tryWriteTLS) its
// safety net, a write deadline, without a timer update per frame: the
// deadline set for an earlier write stands while it leaves at least half
// of timeout, else it is set to now+timeout. Under wmu.
//
// The tls.Conn's reader also writes, rarely (an alert, the answer to a
// client's key update), under whatever deadline stands; one that has
// passed would fail such a write and end the socket, so the socket's
// reader clears it before each message it reads (clearStandingDeadline):
// client messages are rare beside deliveries.
func (hj *hijacked) standingDeadline(now time.Time, timeout time.Duration) error {
	if hj.wdl-now.UnixNano() >= int64(timeout/2) {
		return nil
	}
	return hj.setWriteDeadline(now.Add(timeout))
}

// clearStandingDeadline clears a TLS socket's standing write deadline,
// unless a write is under way (which sets its own).
func (hj *hijacked) clearStandingDeadline() {
	if !hj.wmu.TryLock() {
		return
	}
	defer hj.wmu.Unlock()
	if hj.wdl != 0 {
		_ = hj.setWriteDeadline(time.Time{})
	}
}

// readerConn is the connection as gorilla sees it. gorilla reads through
// it; it writes the handshake's answer, and after that, from the reader
// goroutine, only close frames (a client's close echoed, 1009 for an
// oversized message, 1002 for a protocol error): those are handed to the
// socket, which writes them as its last frame (closeFromReader), so only
// the transport writes to a socket. Ping and pong replies never reach it:
// the transport's control handlers answer (reader.go).
type readerConn struct {
	net.Conn
	hj *hijacked
}

func (l readerConn) Write(p []byte) (int, error) {
	if l.hj.s == nil {
		l.hj.wmu.Lock()
		defer l.hj.wmu.Unlock()
		return l.Conn.Write(p)
	}
	// One unmasked server frame, written whole by WriteControl.
	if len(p) >= 2 && p[0]&0x0F == opClose {
		code, text := websocketCloseStatus(p)
		l.hj.s.closeFromReader(code, text, p)
	}
	return len(p), nil
}

// websocketCloseStatus reads the code and reason of a close frame of at
// most 125 bytes of payload; 1005 when it has none.
func websocketCloseStatus(f []byte) (int, string) {
	payload := f[2:]
	if n := int(f[1] & 0x7F); n <= len(payload) {
		payload = payload[:n]
	}
	if len(payload) < 2 {
		return 1005, ""
	}
	return int(binary.BigEndian.Uint16(payload)), string(payload[2:])
}

func (l readerConn) SetWriteDeadline(t time.Time) error {
	if l.hj.s != nil {
		return nil // the transport sets its own around its writes
	}
	l.hj.wmu.Lock()
	defer l.hj.wmu.Unlock()
	return l.Conn.SetWriteDeadline(t)
}

// hijackable hands gorilla a writer it can hijack. Caddy wraps the
// ResponseWriter in types that lack http.Hijacker but implement
// Unwrap() http.ResponseWriter, which http.ResponseController follows.
// The hijacked reader is replaced by a small one the transport can inspect.
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
	if tc, ok := c.(*tls.Conn); ok {
		// Reads and writes go through TLS; the descriptor under it only
		// says when to wake a parked reader.
		if in := newTLSInput(tc); in != nil {
			if _, raw := plainConnOf(tc.NetConn(), h.unwrap); raw != nil {
				h.hj.tls, h.hj.raw = in, raw
			}
		}
	} else if plain, raw := plainConnOf(c, h.unwrap); raw != nil {
		h.hj.out, h.hj.raw = plain, raw
		h.hj.once.call = h.hj.once.write
	}
	return readerConn{Conn: c, hj: h.hj}, bufio.NewReadWriter(h.hj.br, brw.Writer), nil
}

func (h hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// plainConnOf is the TCP (or Unix) connection under c and its file
// descriptor, or nil. Only a connection that buffers nothing itself
// qualifies: readiness of the descriptor must mean a message is coming.
// A *tls.Conn is not one (its caller looks under it and at what it
// buffers); unwrap may look through a server's wrapper that passes reads
// straight on (the module knows Caddy's).
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

// plain reports whether frames are written straight to the TCP
// connection: with one non-blocking write(2) by their sender, or a
// vectored write by the writer goroutine.
func (hj *hijacked) plain() bool { return hj.raw != nil && hj.tls == nil }
