package wsrelay

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/settings"
	"github.com/nellis-edge/gateway/wsconn"
)

// smallBuffers shrinks the kernel's send buffer of the socket accepted
// from one client port (every socket if port is 0), so that client jams
// its socket after a few messages when it stops reading, instead of after
// megabytes.
type smallBuffers struct {
	net.Listener
	port int
}

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && (l.port == 0 || tc.RemoteAddr().(*net.TCPAddr).Port == l.port) {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// freePort finds a local port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stuckClient logs in as alice from port, the one smallBuffers shrinks,
// with a small kernel receive buffer too: once the test stops reading it,
// the socket jams after a few messages.
func (f *fixture) stuckClient(port int) *client {
	f.t.Helper()
	c := dialWith(f.t, readBufferDialer(4096, port), f.wsURL(), nil).greeted()
	c.authenticate(tokenAlice)
	return c
}

// readBufferDialer dials with the given kernel receive buffer and, unless
// port is 0, from that local port.
func readBufferDialer(size, port int) *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{}
		if port != 0 {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
		}
		c, err := d.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(size)
		}
		return c, err
	}}
}

// TestSlowClientDoesNotDelayOthers: 1 of 100 sockets stops reading. The
// other 99 get every change, in order and promptly; the stuck one is closed
// with 4008 once a write to it exceeds the write timeout.
func TestSlowClientDoesNotDelayOthers(t *testing.T) {
	const (
		sockets = 100
		changes = 20
	)
	stuckPort := freePort(t)
	closeCodes := make(chan int, sockets)
	var slow atomic.Int32
	cfg := testConfig()
	cfg.WriteTimeout = settings.Duration(time.Second)
	cfg.ConnectionsPerMinute = sockets
	cfg.MaxSocketsPerUser = sockets
	f := newFixtureWith(t, cfg, Options{Hooks: Hooks{
		ConnClosed: func(code int) { closeCodes <- code },
		SlowClosed: func() { slow.Add(1) },
	}}, func(s *httptest.Server) { s.Listener = smallBuffers{s.Listener, stuckPort} })

	// Big messages fill the stuck socket quickly.
	owner := f.login(tokenAlice)
	owner.send(map[string]any{"type": "startMonitoring", "auctionId": "9", "requestId": "s",
		"metadata": map[string]any{"title": strings.Repeat("big ", 2048), "url": "https://www.nellisauction.com/p/x/9"}})
	owner.expectType("response")
	owner.expectType("auctionState")
	// The start also pushes the state to alice's other sockets, from a
	// goroutine; run late on a loaded machine, it would reach the sockets
	// signing in below (which get the state in their list) as an extra
	// auctionState, in the middle of their sign-in or with seq 0.
	waitPushed(t, f, "alice", "9")

	stuck := f.stuckClient(stuckPort)
	// From here on the stuck client reads nothing.

	readers := []*client{owner}
	for len(readers) < sockets-1 {
		readers = append(readers, f.login(tokenAlice))
	}
	type receipt struct {
		reader int
		seq    uint64
	}
	type stopped struct {
		reader int
		err    error
	}
	got := make(chan receipt, sockets*changes)
	ended := make(chan stopped, sockets)
	var wg sync.WaitGroup
	for i, c := range readers {
		wg.Go(func() {
			err := c.readStates(func(seq uint64) { got <- receipt{i, seq} })
			ended <- stopped{i, err}
		})
	}
	defer func() {
		for _, c := range readers {
			c.ws.Close()
		}
		wg.Wait()
	}()

	var worst time.Duration
	stuckClosed := false
	last := make([]uint64, len(readers))
	for seq := uint64(1); seq <= changes; seq++ {
		start := time.Now()
		f.feeds.publish(newChange(t, product(9, float64(seq)), "e", seq))
		for n := 0; n < len(readers); {
			select {
			case r := <-got:
				if r.seq != last[r.reader]+1 {
					t.Fatalf("reader %d got seq %d after %d", r.reader, r.seq, last[r.reader])
				}
				last[r.reader] = r.seq
				n++
			case e := <-ended:
				// Its connection ended (the server closed it, or the
				// client gave up): not a change lost on an open socket.
				t.Fatalf("reader %d stopped reading at change %d: %v", e.reader, seq, e.err)
			case code := <-closeCodes:
				if code != CloseSlow || stuckClosed {
					t.Fatalf("a reading client was closed with %d", code)
				}
				stuckClosed = true
			case <-time.After(5 * time.Second):
				var missing []int
				for i, l := range last {
					if l < seq {
						missing = append(missing, i)
					}
				}
				t.Fatalf("change %d did not reach readers %v within 5s (a socket closed slow: %t, %d slow closes)", seq, missing, stuckClosed, slow.Load())
			}
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("worst time for a change to reach all %d readers: %v", len(readers), worst)

	if !stuckClosed {
		select {
		case code := <-closeCodes:
			if code != CloseSlow {
				t.Fatalf("a socket closed with %d, want only the stuck one with 4008", code)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the stuck client was not closed")
		}
	}
	if slow.Load() != 1 {
		t.Errorf("slow closes %d, want 1", slow.Load())
	}
	// The stuck client, reading again, finds its connection ended.
	_ = stuck.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := stuck.ws.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("stuck client's connection still open")
			}
			break
		}
	}
}

// waitPushed waits until no push of the user's auction waits or runs: the
// last push sent the auction's current state.
func waitPushed(t *testing.T, f *fixture, name, auctionID string) {
	t.Helper()
	waitFor(t, "the auction's push", func() bool {
		f.relay.mu.RLock()
		a := f.relay.users[name].auctions[auctionID]
		f.relay.mu.RUnlock()
		a.sendMu.Lock()
		defer a.sendMu.Unlock()
		a.pushMu.Lock()
		due := a.pending.due
		a.pushMu.Unlock()
		f.relay.mu.RLock()
		defer f.relay.mu.RUnlock()
		return !due && a.pushed == a.version
	})
}

// TestQueueCoalescesStates: while a socket is not read, newer states of an
// auction replace older unsent ones, so the reader ends with the latest.
func TestQueueCoalescesStates(t *testing.T) {
	var coalesced atomic.Int32
	f := newFixture(t, testConfig(), Options{Hooks: Hooks{Coalesced: func() { coalesced.Add(1) }}})
	c := f.login(tokenAlice)
	startMonitoring(c, "8", 10)
	conn := f.onlyConn(t, "alice")
	holdWriter(t, conn)
	for seq := uint64(1); seq <= 50; seq++ {
		f.feeds.publish(newChange(t, product(8, float64(seq)), "e", seq))
	}
	queued := conn.s.Queued()
	conn.s.ReleaseWriter()
	if queued != 1 || coalesced.Load() != 49 {
		t.Fatalf("queue %d, coalesced %d; want 1 and 49", queued, coalesced.Load())
	}
	if a := auctionOf(c.expectType("auctionState")); a["seq"] != 50.0 {
		t.Fatalf("got seq %v, want the latest", a["seq"])
	}
}

// holdWriter waits until conn's writer is idle, then keeps any from
// starting, so what is queued next stays queued; the caller releases it.
func holdWriter(t *testing.T, conn *conn) {
	t.Helper()
	waitFor(t, "the writer to drain", conn.s.HoldWriter)
}

// TestOlderStateNeverReplacesNewer: a state read before a change was
// published (a user's own request racing a price change) cannot overwrite
// the newer state waiting in the queue.
func TestOlderStateNeverReplacesNewer(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	c := f.login(tokenAlice)
	startMonitoring(c, "8", 10)
	conn := f.onlyConn(t, "alice")
	holdWriter(t, conn)
	f.feeds.publish(newChange(t, product(8, 12), "e", 7))
	older := wsconn.Message{Frame: wsconn.TextFrame([]byte(`{"type":"auctionState","auction":{"id":"8","seq":6}}`)), Kind: "auctionState"}
	older.Key = stateKey("8")
	older.Epoch, older.Seq = "e", 6
	conn.enqueue(older)
	conn.s.ReleaseWriter()
	if a := auctionOf(c.expectType("auctionState")); a["seq"] != 7.0 {
		t.Fatalf("got seq %v, want the newer 7", a["seq"])
	}
}

// onlyConn is the single authenticated socket of a user.
func (f *fixture) onlyConn(t *testing.T, name string) *conn {
	t.Helper()
	f.relay.mu.RLock()
	defer f.relay.mu.RUnlock()
	u := f.relay.users[name]
	if len(u.conns) != 1 {
		t.Fatalf("%s has %d sockets", name, len(u.conns))
	}
	for c := range u.conns {
		return c
	}
	return nil
}

// TestShutdownCutsStuckClients: Shutdown does not wait out the write
// timeout of a client that stopped reading.
func TestShutdownCutsStuckClients(t *testing.T) {
	stuckPort := freePort(t)
	cfg := testConfig()
	cfg.WriteTimeout = settings.Duration(time.Minute)
	var written atomic.Int64
	f := newFixtureWith(t, cfg, Options{Hooks: Hooks{MessageOut: func(string) { written.Add(1) }}},
		func(s *httptest.Server) { s.Listener = smallBuffers{s.Listener, stuckPort} })
	stuck := f.stuckClient(stuckPort)
	stuck.send(map[string]any{"type": "startMonitoring", "auctionId": "9", "requestId": "s",
		"metadata": map[string]any{"title": strings.Repeat("big ", 4096), "url": "https://www.nellisauction.com/p/x/9"}})
	conn := f.onlyConn(t, "alice")
	// Blocked: a change stays queued while nothing is written for 100ms.
	seq, lastWritten, still := uint64(0), int64(-1), 0
	waitFor(t, "the writer to block", func() bool {
		seq++
		f.feeds.publish(newChange(t, product(9, float64(seq)), "e", seq))
		queued := conn.s.Queued() > 0
		if n := written.Load(); !queued || n != lastWritten {
			lastWritten, still = n, 0
			return false
		}
		still++
		return still == 20
	})
	start := time.Now()
	f.relay.Shutdown()
	if d := time.Since(start); d > shutdownGrace+2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	t.Logf("shutdown with a stuck client took %v", time.Since(start))
}

// TestLargeFanoutKeepsOrder: a change watched by enough users to be split
// across the cores still reaches every user's socket, each in order.
func TestLargeFanoutKeepsOrder(t *testing.T) {
	users := fanoutMin*2 + 10
	cfg := testConfig()
	cfg.ConnectionsPerMinute = users * 2
	cfg.Users = make(map[string]string, users)
	for i := range users {
		cfg.Users[fmt.Sprintf("u%d", i)] = fmt.Sprintf("token-%d", i)
	}
	f := newFixture(t, cfg, Options{})
	clients := make([]*client, users)
	for i := range clients {
		clients[i] = f.login(fmt.Sprintf("token-%d", i))
		startMonitoring(clients[i], "9", 50)
	}
	if fanoutParts(users) < 2 && runtime.GOMAXPROCS(0) > 1 {
		t.Fatalf("%d users would not be split", users)
	}
	const changes = 10
	for seq := uint64(1); seq <= changes; seq++ {
		f.feeds.publish(newChange(t, product(9, float64(100+seq)), "e", seq))
	}
	for i, c := range clients {
		last := 0.0
		for last < changes {
			a := auctionOf(c.expectType("auctionState"))
			seq, _ := a["seq"].(float64)
			if seq <= last {
				t.Fatalf("user %d got seq %v after %v", i, seq, last)
			}
			last = seq
		}
	}
}

// TestAUserWithoutSocketsKeepsTheirOwnStateFromAChange: the fan-out skips
// users with no socket here (in a cluster, the other nodes' users), but a
// change that carries such a user's own state, fetched with their cookies,
// is still kept for them: once they sign in again, the next change shows
// them as winning.
func TestAUserWithoutSocketsKeepsTheirOwnStateFromAChange(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	alice, bob := f.login(tokenAlice), f.login(tokenBob)
	startMonitoring(alice, "9", 50)
	startMonitoring(bob, "9", 50)
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"s=1"}`, http.StatusOK)
	alice.ws.Close()
	f.relay.mu.RLock()
	u := f.relay.users["alice"]
	f.relay.mu.RUnlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.relay.mu.RLock()
		conns, key := len(u.conns), u.stateKey
		f.relay.mu.RUnlock()
		if conns == 0 {
			if key == "" {
				t.Fatal("alice's cookies gave no state key")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice's socket is still registered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.relay.mu.RLock()
	key := u.stateKey
	f.relay.mu.RUnlock()

	own := newChange(t, product(9, 10), "e", 1)
	own.User = &hub.UserState{Owner: key, IsWinning: true}
	f.feeds.publish(own)
	winning := func(a map[string]any) any { return a["data"].(map[string]any)["isWinning"] }
	if a := auctionOf(bob.expectType("auctionState")); winning(a) != false {
		t.Fatalf("bob sees alice's state: %v", a)
	}

	alice = f.login(tokenAlice)
	f.feeds.publish(newChange(t, product(9, 11), "e", 2))
	for {
		a := auctionOf(alice.expectType("auctionState"))
		if a["seq"] != 2.0 {
			continue
		}
		if winning(a) != true {
			t.Fatalf("alice's own state was not kept while she had no socket: %v", a)
		}
		return
	}
}
