package wsconn

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fixture is a server whose sockets echo every message back.
type fixture struct {
	t      testing.TB
	tr     *Transport
	srv    *httptest.Server
	mu     sync.Mutex
	socks  []*Socket
	closed chan int // each socket's end code (Handler.Closed)
	dialed []*client
}

const testReadLimit = 1024

type echo struct {
	s *Socket
	f *fixture
}

func (e *echo) Message(data []byte) { e.s.Send(Message{Frame: TextFrame(data), Kind: "echo"}) }
func (e *echo) Invalid()            {}
func (e *echo) ReadLimit() int64    { return testReadLimit }
func (e *echo) SlowClosed()         {}
func (e *echo) Closed(code int)     { e.f.closed <- code }

type nopHooks struct{}

func (nopHooks) Coalesced()                   {}
func (nopHooks) Dropped(string)               {}
func (nopHooks) Wrote(string, time.Time)      {}
func (nopHooks) Panicked(string, any, []byte) {}

func newFixture(t testing.TB) *fixture {
	return newFixtureWith(t, Limits{QueueSize: 16, WriteTimeout: 2 * time.Second, PingInterval: 10 * time.Second})
}

func newFixtureWith(t testing.TB, limits Limits) *fixture {
	return newFixtureTLS(t, limits, false)
}

// newFixtureTLS is newFixtureWith over TLS, terminated by crypto/tls in
// the server as Caddy does, when overTLS.
func newFixtureTLS(t testing.TB, limits Limits, overTLS bool) *fixture {
	tr, _ := New(limits, nopHooks{}, nil)
	f := &fixture{t: t, tr: tr, closed: make(chan int, 2*idleSockets)}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s, err := tr.Upgrade(w, req)
		if err != nil {
			return
		}
		s.Attach(&echo{s: s, f: f})
		f.mu.Lock()
		f.socks = append(f.socks, s)
		f.mu.Unlock()
		s.Run()
	}))
	if overTLS {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(f.close)
	return f
}

func (f *fixture) close() {
	for _, c := range f.dialed {
		c.ws.Close()
	}
	f.mu.Lock()
	for _, s := range f.socks {
		s.Close(websocket.CloseGoingAway, "test over")
	}
	f.mu.Unlock()
	f.tr.Wait()
	f.tr.Close()
	f.srv.Close()
}

type client struct {
	t  testing.TB
	ws *websocket.Conn
}

func (f *fixture) dial() *client {
	f.t.Helper()
	dialer := *websocket.DefaultDialer
	if f.srv.TLS != nil {
		dialer.TLSClientConfig = f.srv.Client().Transport.(*http.Transport).TLSClientConfig
	}
	ws, _, err := dialer.Dial(f.wsURL(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	c := &client{t: f.t, ws: ws}
	f.dialed = append(f.dialed, c)
	return c
}

// read is the next message, within 5 s.
func (c *client) read() []byte {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	return data
}

// expectClose reads until the server's close frame and returns its code.
func (c *client) expectClose() int {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ws.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		if err != nil {
			c.t.Fatalf("no close frame: %v", err)
		}
	}
}

// waitSockets waits until n sockets are open and returns them.
func (f *fixture) waitSockets(n int) []*Socket {
	f.t.Helper()
	var socks []*Socket
	waitFor(f.t, "the sockets", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		socks = append(socks[:0], f.socks...)
		return len(socks) >= n
	})
	return socks
}

func (f *fixture) endCode() int {
	f.t.Helper()
	select {
	case code := <-f.closed:
		return code
	case <-time.After(5 * time.Second):
		f.t.Fatal("the socket never ended")
		return 0
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
