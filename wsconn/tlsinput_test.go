package wsconn

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestTLSInputLayout: tlsInput reads this Go's crypto/tls right: what a
// tls.Conn holds decrypted, and ciphertext it has read ahead, are counted,
// and nothing once all is read. If a Go release changes the fields, this
// fails (and TLS sockets are no longer parked, rather than missing input).
func TestTLSInputLayout(t *testing.T) {
	if tlsLayout() == nil {
		t.Fatal("crypto/tls's input fields are not where tlsInput looks: TLS sockets would never park")
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	defer srv.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.TLS)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	held := &heldConn{Conn: raw}
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.ServerName = "example.com"
	client := tls.Client(held, cfg)
	defer client.Close()
	sc := <-accepted
	if sc == nil {
		t.Fatal("no connection accepted")
	}
	server := sc.(*tls.Conn)
	defer server.Close()
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	in := newTLSInput(server)
	if n := in.buffered(); n != 0 {
		t.Fatalf("%d bytes buffered before anything was sent", n)
	}

	// Two records of ten bytes in one TCP segment.
	held.hold()
	_, _ = client.Write([]byte("0123456789"))
	_, _ = client.Write([]byte("abcdefghij"))
	if err := held.release(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(server, buf); err != nil {
		t.Fatal(err)
	}
	if n := in.buffered(); n < 7 {
		t.Errorf("%d bytes buffered with 7 of the first record decrypted and unread", n)
	}
	buf = make([]byte, 7)
	if _, err := io.ReadFull(server, buf); err != nil {
		t.Fatal(err)
	}
	if n := in.buffered(); n == 0 {
		t.Error("nothing buffered with the second record read ahead")
	}
	buf = make([]byte, 10)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "abcdefghij" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if n := in.buffered(); n != 0 {
		t.Errorf("%d bytes buffered with everything read", n)
	}

	// Released, the buffers are gone, and the next records read as ever.
	in.release()
	l := tlsLayout()
	for name, idx := range map[string][]int{"rawInput": l.rawInput, "hand": l.hand} {
		if c := in.conn.FieldByIndex(idx).FieldByIndex(l.bufBuf).Cap(); c != 0 {
			t.Errorf("%s keeps %d bytes after release", name, c)
		}
	}
	held.hold()
	_, _ = client.Write([]byte("klmno"))
	_, _ = client.Write([]byte("pqrst"))
	if err := held.release(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "klmnopqrst" {
		t.Fatalf("read %q after release, %v", buf, err)
	}
}
