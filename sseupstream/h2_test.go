package sseupstream

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/nellissim"
	"github.com/nellis-edge/gateway/settings"
)

// counter is an Observer that counts, per product, what the streams did;
// it never blocks, however many pings arrive.
type counter struct {
	mu    sync.Mutex
	ups   map[int64]int
	downs map[int64]int
	bids  map[int64]int
	waits []time.Duration // retry delays reported
}

func newCounter() *counter {
	return &counter{ups: map[int64]int{}, downs: map[int64]int{}, bids: map[int64]int{}}
}

func (c *counter) StreamUp(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ups[id]++
}

func (c *counter) StreamEvent(ev Event) {
	if ev.Kind != Bid {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bids[ev.ProductID]++
}

func (*counter) StreamDecodeError(int64, string, error) {}

func (c *counter) StreamDown(id int64, _ Reason, _ error, retryIn time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.downs[id]++
	c.waits = append(c.waits, retryIn)
}

// each reports whether f holds for every id.
func (c *counter) each(ids []int64, f func(id int64) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if !f(id) {
			return false
		}
	}
	return true
}

// simRig is a simulator of n lots pinging every 50 ms, served as opts say,
// and the ids of its lots. Everything ends with the test, the simulator
// before its server.
func simRig(t *testing.T, n int, opts nellissim.ServeOptions) (*nellissim.Simulator, *nellissim.Server, []int64) {
	t.Helper()
	sim := nellissim.New(nellissim.Config{Seed: 7, Auctions: n, PingInterval: 50 * time.Millisecond, AuctionLength: 24 * time.Hour})
	sim.Start()
	srv, err := sim.Serve(opts)
	if err != nil {
		sim.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sim.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("simulator server: %v", err)
		}
	})
	var ids []int64
	for _, a := range sim.Auctions() {
		ids = append(ids, a.ID)
	}
	return sim, srv, ids
}

// subscribeAll opens one subscription per id through NewHTTPClient
// trusting srv, all closed (and the client's idle connections too) when
// the test ends. It returns the client.
func subscribeAll(t *testing.T, srv *nellissim.Server, ids []int64, obs Observer) *http.Client {
	t.Helper()
	client := NewHTTPClient(srv.RootCAs())
	cfg := Config{
		Endpoint:    srv.URL,
		HTTPClient:  client,
		BackoffBase: settings.Duration(200 * time.Millisecond),
	}.WithDefaults()
	subs := make([]*Subscription, len(ids))
	for i, id := range ids {
		subs[i] = Subscribe(cfg, id, obs)
	}
	t.Cleanup(func() {
		for _, s := range subs {
			s.Close()
		}
		client.CloseIdleConnections()
	})
	return client
}

// TestStreamsOverEachProtocol follows lots over h2, HTTP/1.1 over TLS and
// plain HTTP/1.1, with the transport the gateway uses: every stream comes
// up and delivers a bid, every lot's snapshot is polled through the same
// transport, and the simulator counts the connections they take: one per
// stream over HTTP/1.1 (and polls, a few more), a shared few over h2.
func TestStreamsOverEachProtocol(t *testing.T) {
	const n = 20
	for _, tc := range []struct {
		name     string
		opts     nellissim.ServeOptions
		maxConns int64
		minConns int64
	}{
		{"h2", nellissim.ServeOptions{TLS: true}, 1, 1},
		{"http1 over tls", nellissim.ServeOptions{TLS: true, HTTP1Only: true}, n + 4, n},
		{"http1", nellissim.ServeOptions{}, n + 4, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, srv, ids := simRig(t, n, tc.opts)
			obs := newCounter()
			httpClient := subscribeAll(t, srv, ids, obs)
			waitFor(t, "every stream up", func() bool {
				return obs.each(ids, func(id int64) bool { return obs.ups[id] == 1 })
			})
			for _, id := range ids {
				if err := sim.EmitBid(id, 1_000_000, "rival"); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "every bid delivered", func() bool {
				return obs.each(ids, func(id int64) bool { return obs.bids[id] == 1 })
			})
			polls, err := nellis.NewClient(nellis.ClientConfig{
				APIEndpoint: srv.URL,
				HTTPClient:  &http.Client{Transport: httpClient.Transport, Timeout: testTimeout},
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				snap, err := polls.Snapshot(context.Background(), id, "")
				if err != nil {
					t.Fatalf("snapshot of %d: %v", id, err)
				}
				if p := snap.Patch.CurrentBid; p == nil || *p != 1_000_000 {
					t.Errorf("snapshot of %d: price %v, want the bid's 1000000", id, p)
				}
			}
			if got := srv.Accepted(); got < tc.minConns || got > tc.maxConns {
				t.Errorf("%d streams took %d connections, want %d to %d", n, got, tc.minConns, tc.maxConns)
			}
		})
	}
}

// TestH2StreamsBeyondTheServersLimitOpenMoreConnections: a connection
// carries at most the server's MAX_CONCURRENT_STREAMS; the streams beyond
// it go on new connections instead of waiting (they would never get a
// slot: a stream lasts hours), and no more connections are opened than
// that needs, give or take the dials raced at start.
func TestH2StreamsBeyondTheServersLimitOpenMoreConnections(t *testing.T) {
	const n, limit = 95, 10
	_, srv, ids := simRig(t, n, nellissim.ServeOptions{TLS: true, MaxConcurrentStreams: limit})
	obs := newCounter()
	subscribeAll(t, srv, ids, obs)
	waitFor(t, "every stream up", func() bool {
		return obs.each(ids, func(id int64) bool { return obs.ups[id] >= 1 })
	})
	want := int64((n+limit-1)/limit) + 3
	if got := srv.Accepted(); got > want {
		t.Errorf("%d streams at %d per connection took %d connections, want at most %d", n, limit, got, want)
	}
	// Every stream is still up once the connections settle: none was
	// refused for want of a slot.
	time.Sleep(300 * time.Millisecond)
	if !obs.each(ids, func(id int64) bool { return obs.downs[id] == 0 }) {
		t.Errorf("streams went down: %v", obs.downs)
	}
}

// TestH2ConnectionDropReconnectsEveryStream cuts the connection that
// carries every stream: each stream is reported down with a retry delay
// within the backoff and comes back once, on a new connection.
func TestH2ConnectionDropReconnectsEveryStream(t *testing.T) {
	const n = 30
	_, srv, ids := simRig(t, n, nellissim.ServeOptions{TLS: true})
	obs := newCounter()
	subscribeAll(t, srv, ids, obs)
	waitFor(t, "every stream up", func() bool {
		return obs.each(ids, func(id int64) bool { return obs.ups[id] == 1 })
	})
	before := srv.Accepted()
	if dropped := srv.DropConnections(); dropped < 1 {
		t.Fatalf("dropped %d connections", dropped)
	}
	waitFor(t, "every stream back up", func() bool {
		return obs.each(ids, func(id int64) bool { return obs.ups[id] == 2 && obs.downs[id] == 1 })
	})
	obs.mu.Lock()
	for _, w := range obs.waits {
		if w < 0 || w > 200*time.Millisecond {
			t.Errorf("retry in %s, want within the 200ms backoff base", w)
		}
	}
	obs.mu.Unlock()
	if got := srv.Accepted() - before; got < 1 || got > 3 {
		t.Errorf("%d streams came back on %d new connections, want 1 to 3", n, got)
	}
}
