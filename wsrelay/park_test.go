//go:build linux && !nellis_portable

// Parking needs the epoll-based idle poller: these tests are linux-only,
// and the nellis_portable tag takes the poller away.

package wsrelay

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/settings"
)

func requireIdlePoller(t *testing.T, r *Relay) {
	t.Helper()
	if !r.tr.Polling() {
		t.Fatal("no idle poller on linux")
	}
}

// TestIdleSocketsHoldNoGoroutine: a socket with nothing to read costs no
// goroutine, and wakes when its client talks, as often as it talks.
func TestIdleSocketsHoldNoGoroutine(t *testing.T) {
	const sockets = 50
	cfg := testConfig()
	cfg.ConnectionsPerMinute = 4 * sockets
	cfg.MaxUnauthenticated = 4 * sockets
	cfg.MaxSocketsPerUser = sockets
	cfg.MaxUnauthenticatedPerAddress = 4 * sockets
	f := newFixture(t, cfg, Options{})
	requireIdlePoller(t, f.relay)
	clients := make([]*client, sockets)
	for i := range clients {
		clients[i] = f.login(tokenAlice)
	}
	waitParked(t, f.relay, sockets)
	base := runtime.NumGoroutine()
	more := make([]*client, sockets)
	for i := range more {
		more[i] = f.connect()
	}
	waitParked(t, f.relay, 2*sockets)
	// Each test client holds none either (it reads only when asked), so
	// the process grew by no goroutine per socket.
	if grown := runtime.NumGoroutine() - base; grown >= sockets/2 {
		t.Errorf("%d more goroutines for %d more idle sockets", grown, sockets)
	}
	for range 3 {
		for _, c := range clients {
			c.roundTrip()
		}
		waitParked(t, f.relay, 2*sockets)
	}
}

// TestPongKeepsSocketParked: a silent client is pinged every ping interval
// and its pongs keep it open, without its reader staying awake in gorilla
// after each one; a pong arriving with a message is not lost either.
func TestPongKeepsSocketParked(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = settings.Duration(40 * time.Millisecond)
	f := newFixture(t, cfg, Options{})
	requireIdlePoller(t, f.relay)
	c := f.connect()
	raw := c.ws.NetConn() // from here on the test speaks the frames itself
	pings := make(chan struct{}, 100)
	texts := make(chan string, 10)
	go func() {
		br := bufio.NewReader(raw)
		for {
			var head [2]byte
			if _, err := io.ReadFull(br, head[:]); err != nil {
				close(texts)
				return
			}
			payload := make([]byte, head[1]&0x7F) // the relay's frames here are short
			if _, err := io.ReadFull(br, payload); err != nil {
				close(texts)
				return
			}
			switch head[0] & 0x0F {
			case websocket.PingMessage:
				pings <- struct{}{}
				_, _ = raw.Write(clientFrame(websocket.PongMessage, string(payload)))
			case websocket.TextMessage:
				texts <- string(payload)
			}
		}
	}()
	// Five ping intervals: far past the two after which a socket that
	// answered nothing is dropped.
	select {
	case m, ok := <-texts:
		t.Fatalf("socket ended or sent %q while answering pings (open: %v)", m, ok)
	case <-time.After(time.Duration(5 * cfg.PingInterval)):
	}
	if n := len(pings); n < 3 {
		t.Fatalf("%d pings in five intervals", n)
	}
	waitParked(t, f.relay, 1)

	// A pong and a message in one write: the pong is taken at the buffer's
	// head, the message still reaches gorilla.
	both := append(clientFrame(websocket.PongMessage, "x"), clientFrame(websocket.TextMessage, `{"type":"ping"}`)...)
	if _, err := raw.Write(both); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-texts:
		if !strings.Contains(m, `"type":"pong"`) {
			t.Fatalf("answer %q, want a pong message", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message behind a pong was not answered")
	}
	waitParked(t, f.relay, 1)
}

// TestSilentParkedSocketIsDropped: no read deadline fires while a socket
// is parked; the sweeper drops it after two silent ping intervals.
func TestSilentParkedSocketIsDropped(t *testing.T) {
	closed := make(chan int, 1)
	cfg := testConfig()
	cfg.PingInterval = settings.Duration(40 * time.Millisecond)
	f := newFixture(t, cfg, Options{Hooks: Hooks{ConnClosed: func(code int) { closed <- code }}})
	requireIdlePoller(t, f.relay)
	// Before the dial: the socket's silence counts from its upgrade, which
	// the server finishes before the client's dial returns.
	start := time.Now()
	f.dial(nil) // never reads, so never answers a ping
	select {
	case code := <-closed:
		if code != websocket.CloseAbnormalClosure {
			t.Errorf("closed with %d, want %d", code, websocket.CloseAbnormalClosure)
		}
		if took := time.Since(start); took < time.Duration(2*cfg.PingInterval) {
			t.Errorf("dropped after %v, before two ping intervals", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a silent parked socket was never dropped")
	}
}

// TestShutdownEndsParkedSockets: parked sockets get 1001 and the relay's
// goroutines all end (the package's goleak check covers the poller).
func TestShutdownEndsParkedSockets(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	requireIdlePoller(t, f.relay)
	a, b := f.login(tokenAlice), f.connect()
	waitParked(t, f.relay, 2)
	f.relay.Shutdown()
	for _, c := range []*client{a, b} {
		if code := c.expectClose(); code != websocket.CloseGoingAway {
			t.Errorf("closed with %d, want 1001", code)
		}
	}
}

// TestTLSSocketsPark: an idle socket over TLS is parked like a plain
// one (when crypto/tls holds none of its input, wsconn's tlsInput), wakes
// for each request, and parks again.
func TestTLSSocketsPark(t *testing.T) {
	cfg := testConfig()
	cfg.MessageBurst = 100 // the 30 startMonitoring requests
	f := newFixture(t, cfg, Options{})
	requireIdlePoller(t, f.relay)
	srv := httptest.NewTLSServer(f.mux())
	defer srv.Close()
	dialer := websocket.Dialer{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
	c := dialWith(t, &dialer, "wss"+strings.TrimPrefix(srv.URL, "https")+"/ws", nil).greeted()
	plain := f.connect()
	waitParked(t, f.relay, 2)
	for range 3 {
		c.roundTrip()
		plain.roundTrip()
	}
	waitParked(t, f.relay, 2)

	// Changes in quick succession, written by their sender while the
	// kernel has room and else queued behind the TLS socket's writer and
	// joined in batches: every one arrives, in order.
	c.authenticate(tokenAlice)
	const lots = 30
	for id := 1; id <= lots; id++ {
		c.send(map[string]any{"type": "startMonitoring", "auctionId": strconv.Itoa(id), "requestId": "r"})
	}
	for range lots {
		c.expectType("response")
		c.expectType("auctionState")
	}
	for id := int64(1); id <= lots; id++ {
		f.feeds.publish(newChange(t, product(id, 50), "e", 2))
	}
	for id := 1; id <= lots; id++ {
		if a := auctionOf(c.expectType("auctionState")); a["id"] != strconv.Itoa(id) || a["currentBid"] != 50.0 {
			t.Fatalf("change %d arrived as auction %v at %v", id, a["id"], a["currentBid"])
		}
	}
}
