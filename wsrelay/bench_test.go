package wsrelay

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/internal/childproc"
	"github.com/nellis-edge/gateway/wsconn"
)

// BenchmarkEncodeAuctionState is the per (change, user) cost of fan-out.
func BenchmarkEncodeAuctionState(b *testing.B) {
	a := newMonitored(Auction{ID: "58040119", ProductID: 58040119, Title: "PARTIAL ITEM THIS IS ONLY BOX 1",
		URL: "https://www.nellisauction.com/p/x/58040119", Config: defaultAuctionConfig}, nil)
	c := newChange(b, product(58040119, 25), "epoch", 7)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = auctionStateJSON(a.head, a.AddedAt, c, a.autoBid, nil, now, false)
	}
}

// BenchmarkEncodeAuctionStateWithAutoBid is the same with the user's
// auto-bid state and a full history (100 bids) spliced in.
func BenchmarkEncodeAuctionStateWithAutoBid(b *testing.B) {
	a := newMonitored(Auction{ID: "58040119", ProductID: 58040119, Title: "PARTIAL ITEM THIS IS ONLY BOX 1",
		URL: "https://www.nellisauction.com/p/x/58040119", Config: defaultAuctionConfig}, nil)
	view, ok := newAutoBidView(stateOf("", "", `{"productId":58040119,"status":"winning","isWinning":true,"maxBidReached":false,"bids":`+bidsJSON(100)+`}`))
	if !ok {
		b.Fatal("state refused")
	}
	a.autoBid = view
	c := newChange(b, product(58040119, 25), "epoch", 7)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = auctionStateJSON(a.head, a.AddedAt, c, a.autoBid, nil, now, false)
	}
}

// BenchmarkFanout times one change reaching 100 sockets of one user over
// real WebSockets: encoded and framed once, the frame shared by all.
func BenchmarkFanout(b *testing.B) {
	const sockets = 100
	cfg := testConfig()
	cfg.ConnectionsPerMinute = sockets * 2
	cfg.MaxSocketsPerUser = sockets
	f := newFixture(b, cfg, Options{})
	first := f.login(tokenAlice)
	startMonitoring(first, "9", 50)
	clients := []*client{first}
	for len(clients) < sockets {
		clients = append(clients, f.login(tokenAlice))
	}
	got := make(chan struct{}, sockets)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.readStates(func(uint64) { got <- struct{}{} }) })
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f.feeds.publish(newChange(b, product(9, float64(i+1)), "e", uint64(i+1)))
		for range sockets {
			<-got
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sockets), "ns/delivery")
	for _, c := range clients {
		c.ws.Close()
	}
	wg.Wait()
}

// BenchmarkFanoutUsersElsewhere times one change reaching 100 users with
// a socket each, while 200 more users monitor the product with no socket
// here, as a cluster node holds the users signed in on the other nodes
// (every node monitors every user's auctions). fanout-ns/delivery is the
// time the fan-out took (the change's publish, which returns once every
// socket was written to or queued), per socket.
func BenchmarkFanoutUsersElsewhere(b *testing.B) {
	const here, elsewhere = 100, 200
	cfg := testConfig()
	cfg.Users = map[string]string{}
	for i := range here + elsewhere {
		cfg.Users[fmt.Sprintf("u%d", i)] = fmt.Sprintf("token-%d", i)
	}
	cfg.ConnectionsPerMinute = 10 * (here + elsewhere) // the benchmark may run more than once
	f := newFixture(b, cfg, Options{})
	var clients []*client
	for i := range here + elsewhere {
		c := f.login(fmt.Sprintf("token-%d", i))
		startMonitoring(c, "9", 50)
		if i < here {
			clients = append(clients, c)
		} else {
			c.ws.Close()
		}
	}
	for deadline := time.Now().Add(10 * time.Second); f.relay.Stats().Connections > here; {
		if time.Now().After(deadline) {
			b.Fatal("the other users' sockets are still registered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A socket that falls behind gets the newest state in place of the
	// ones it missed, so each waits for the change's seq, not a count.
	seqs := make([]atomic.Uint64, here)
	got := make(chan struct{}, here)
	var wg sync.WaitGroup
	for k, c := range clients {
		wg.Go(func() {
			c.readStates(func(seq uint64) {
				seqs[k].Store(seq)
				select {
				case got <- struct{}{}:
				default: // the waiter has news to read already
				}
			})
		})
	}
	var fanout time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := newChange(b, product(9, float64(i+1)), "e", uint64(i+1))
		began := time.Now()
		f.feeds.publish(c)
		fanout += time.Since(began)
		for k := range seqs {
			for seqs[k].Load() < c.Seq {
				<-got
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(fanout.Nanoseconds())/float64(b.N*here), "fanout-ns/delivery")
	for _, c := range clients {
		c.ws.Close()
	}
	wg.Wait()
}

// BenchmarkIdleConnMemory reports the memory the relay holds per idle
// socket: heap and stacks of this process, while the clients run in a child
// process so that their memory is not counted. It measures once; run it
// alone (-bench IdleConn) so no earlier benchmark's freed memory is reused.
func BenchmarkIdleConnMemory(b *testing.B) {
	const sockets = 1000
	cfg := testConfig()
	cfg.ConnectionsPerMinute = sockets
	cfg.MaxUnauthenticated = sockets
	cfg.MaxUnauthenticatedPerAddress = sockets
	f := newFixture(b, cfg, Options{})
	mem0 := childproc.MemInUse()
	child := childproc.StartWork(b, "idle-clients", f.wsURL(), sockets)
	for f.relay.Stats().Connections < sockets || writersRunning(f.relay) {
		time.Sleep(10 * time.Millisecond)
	}
	mem1 := childproc.MemInUse()
	for b.Loop() {
		// The measurement above is the benchmark.
	}
	childproc.ReportPerConn(b, mem0, mem1, sockets)
	if err := child.Stop(); err != nil {
		b.Fatal(err)
	}
}

// runIdleClients is the child process of BenchmarkIdleConnMemory: it opens
// the sockets, says ready, and holds them until its stdin closes.
func runIdleClients(url string, n int) int {
	return childproc.HoldSockets(&websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256}, url, n, nil)
}

func writersRunning(r *Relay) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for c := range r.conns {
		if c.s.Writing() {
			return true
		}
	}
	return false
}

// BenchmarkFannedStateFrame is a fanned-out change's per-user work: the
// fields encoded once are copied around the user's head, with the public
// values or, for the user whose cookies fetched the snapshot, their own
// state swapped in.
func BenchmarkFannedStateFrame(b *testing.B) {
	a := newMonitored(Auction{ID: "58040119", ProductID: 58040119, Title: "PARTIAL ITEM THIS IS ONLY BOX 1",
		URL: "https://www.nellisauction.com/p/x/58040119", Config: defaultAuctionConfig}, nil)
	c := newChange(b, product(58040119, 25), "epoch", 7)
	cf := newChangeFields(c, time.Now())
	for _, bc := range []struct {
		name string
		us   *hub.UserState
	}{
		{"public", nil},
		{"own state", &hub.UserState{Owner: "k", IsWinning: true, IsWatching: true, NextBid: 27}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := frameBuf(fannedStateSize(a.head, &cf, a.autoBid, bc.us))
			b.ReportAllocs()
			for b.Loop() {
				_ = fannedStateFrame(buf[:wsconn.Headroom], a.head, &cf, a.autoBid, bc.us)
			}
		})
	}
}
