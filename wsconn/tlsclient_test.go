package wsconn

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// heldConn holds what is written to it while held and writes it all in
// one write(2) on release, so that several TLS records reach the server
// in one TCP segment, as they may from any client: the server's tls.Conn
// then reads the later records ahead, into its own buffer.
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	held *bytes.Buffer // nil: not holding
}

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held != nil {
		return c.held.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *heldConn) hold() {
	c.mu.Lock()
	c.held = &bytes.Buffer{}
	c.mu.Unlock()
}

func (c *heldConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.held
	c.held = nil
	_, err := c.Conn.Write(b.Bytes())
	return err
}

// tlsClient is a WebSocket client over TLS that says exactly which
// records it sends (each Write of its tls.Conn is one record) and which
// of them go out together.
type tlsClient struct {
	t    testing.TB
	held *heldConn
	tc   *tls.Conn
	br   *bufio.Reader
}

// dialTLS opens a TLS connection to f's server; upgrade makes it a
// WebSocket.
func (f *fixture) dialTLS() *tlsClient {
	f.t.Helper()
	raw, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		f.t.Fatal(err)
	}
	held := &heldConn{Conn: raw}
	cfg := f.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	cfg.ServerName = "example.com" // in the test certificate
	tc := tls.Client(held, cfg)
	if err := tc.Handshake(); err != nil {
		f.t.Fatal(err)
	}
	c := &tlsClient{t: f.t, held: held, tc: tc, br: bufio.NewReader(tc)}
	f.t.Cleanup(func() { tc.Close() })
	return c
}

// upgrade sends the handshake's request and, as soon as the answer is
// read, pipelined, each a record of its own, all in one TCP segment: what
// a client that talks at once sends while the server's socket is new.
// (Bytes sent before the answer make the server refuse the upgrade.)
func (c *tlsClient) upgrade(pipelined ...[]byte) {
	c.t.Helper()
	req := "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	c.records([]byte(req))
	_ = c.tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		c.t.Fatalf("upgrade answered %s", res.Status)
	}
	c.together(pipelined...)
}

// records writes each of rs as a record of its own.
func (c *tlsClient) records(rs ...[]byte) {
	c.t.Helper()
	for _, r := range rs {
		if _, err := c.tc.Write(r); err != nil {
			c.t.Fatal(err)
		}
	}
}

// together writes rs as records of their own in one TCP segment.
func (c *tlsClient) together(rs ...[]byte) {
	c.t.Helper()
	c.held.hold()
	c.records(rs...)
	if err := c.held.release(); err != nil {
		c.t.Fatal(err)
	}
}

// readText is the payload of the server's next frame, a text one.
func (c *tlsClient) readText() string {
	c.t.Helper()
	_ = c.tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var head [2]byte
	if _, err := io.ReadFull(c.br, head[:]); err != nil {
		c.t.Fatal(err)
	}
	if head[0] != 0x81 {
		c.t.Fatalf("frame %#x, want a final text frame", head[0])
	}
	size := int(head[1] & 0x7F)
	if size == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			c.t.Fatal(err)
		}
		size = int(binary.BigEndian.Uint16(ext[:]))
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		c.t.Fatal(err)
	}
	return string(payload)
}

// maskedText is a client's final text frame, masked with a zero key so
// the payload reads as it is (RFC 6455 §5.3 allows any key).
func maskedText(payload string) []byte {
	f := []byte{0x81}
	if len(payload) < 126 {
		f = append(f, 0x80|byte(len(payload)))
	} else {
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(len(payload)))
	}
	return append(append(f, 0, 0, 0, 0), payload...)
}

// textOfFrameSize is a payload whose masked frame is size bytes long.
func textOfFrameSize(size int) string {
	return strings.Repeat("t", size-2-2-4)
}
