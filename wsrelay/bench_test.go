package wsrelay

import (
	"sync"
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
