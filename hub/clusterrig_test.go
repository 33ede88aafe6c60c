package hub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/internal/natstest"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/settings"
	"github.com/nellis-edge/gateway/sseupstream"
)

// testLease is the cluster tests' lease, the shortest allowed.
const testLease = time.Second

// starvedLease is the lease of the tests whose claim does not depend on
// the lease being short (lots move to their rendezvous node, a reload
// keeps leases, a closing lot stays): one their nodes keep on a starved
// machine. With testLease an owner must renew within 0.8 s of its last
// renewal; in CI's `go test -race ./...` on two cores, beside packages
// that start Caddy processes, a process went that long without running
// and every lease of the test lapsed at once (the reload test failed 1 run
// in 5, with "could not be renewed in time" for all its lots together).
// With 2 s it renews within 1.6 s. Their bounds stay relative to it.
const starvedLease = 2 * time.Second

// clusterRig is several hubs, each on its own bus to one embedded NATS
// server, with one fake upstream: the snapshots' truth is shared and every
// stream any hub opens is recorded with its node.
type clusterRig struct {
	t       testing.TB
	nats    *natstest.Server
	ft      *fakeFetcher
	closeAt time.Time // the lots' close time, an hour away
	linger  time.Duration
	lease   time.Duration // the nodes' lease; testLease when zero

	mu      sync.Mutex
	streams []*rigStream
	nodes   []*rigNode
}

type rigStream struct {
	*fakeStream
	node string
}

type rigNode struct {
	name    string
	bus     cluster.Bus
	jet     *cluster.JetStream
	h       *Hub
	appends chan string // SharedAppend results
}

func newClusterRig(t testing.TB) *clusterRig {
	return &clusterRig{
		t:       t,
		nats:    natstest.Start(t),
		ft:      &fakeFetcher{state: make(map[int64]nellis.Patch)},
		closeAt: time.Now().Add(time.Hour).Truncate(time.Second),
	}
}

// node starts a hub named name; wrap, if given, stands between the hub
// and its bus.
func (r *clusterRig) node(name string, wrap func(*cluster.JetStream) cluster.Bus, opts ...func(*Deps)) *rigNode {
	r.t.Helper()
	return r.nodeAt(name, r.nats.URL(), wrap, opts...)
}

// nodeAt starts a hub named name whose bus dials url (a proxy, say).
func (r *clusterRig) nodeAt(name, url string, wrap func(*cluster.JetStream) cluster.Bus, opts ...func(*Deps)) *rigNode {
	r.t.Helper()
	lease := r.leaseOf()
	jet, err := cluster.New(cluster.Config{Servers: []string{url}, Node: name, Lease: settings.Duration(lease), History: 16})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := jet.Connect(ctx); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = jet.Close() })
	n := &rigNode{name: name, jet: jet, bus: jet, appends: make(chan string, 1000)}
	if wrap != nil {
		n.bus = wrap(jet)
	}
	cfg := r.hubConfig()
	deps := Deps{
		Snapshots:  r.ft,
		OpenStream: r.opener(name),
		Rand:       func() float64 { return 0.5 },
		Shared:     n.bus,
		Logger:     zaptest.NewLogger(r.t, zaptest.Level(zap.InfoLevel)).With(zap.String("node", name)),
		Hooks: Hooks{SharedAppend: func(_ int64, result string) {
			select {
			case n.appends <- result:
			default:
			}
		}},
	}
	for _, o := range opts {
		o(&deps)
	}
	n.h = New(cfg, deps)
	r.t.Cleanup(n.h.Close)
	r.mu.Lock()
	r.nodes = append(r.nodes, n)
	r.mu.Unlock()
	return n
}

// leaseOf is the rig's nodes' lease.
func (r *clusterRig) leaseOf() time.Duration { return cmp.Or(r.lease, testLease) }

// hubConfig is the rig's hubs' config.
func (r *clusterRig) hubConfig() Config {
	cfg := Config{UseSSE: true, Limiter: fallback.LimiterConfig{Rate: 1e6, Burst: 1000}, Linger: settings.Duration(r.linger)}
	cfg.SSE.Endpoint = "http://sse.test"
	return cfg
}

// opener records the node's streams. Each connects and pings at once, so
// that it is healthy before the test plays a bid on it.
func (r *clusterRig) opener(node string) StreamOpener {
	return func(_ sseupstream.Config, id int64, obs sseupstream.Observer) Stream {
		s := &rigStream{fakeStream: &fakeStream{id: id, obs: obs, closed: make(chan struct{})}, node: node}
		r.mu.Lock()
		r.streams = append(r.streams, s)
		r.mu.Unlock()
		obs.StreamUp(id)
		obs.StreamEvent(sseupstream.Event{Kind: sseupstream.Ping, ProductID: id, ReceivedAt: time.Now()})
		return s
	}
}

// open lists the product's open streams, whichever hub opened them.
func (r *clusterRig) open(id int64) []*rigStream {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*rigStream
	for _, s := range r.streams {
		if s.id == id && !s.isClosed() {
			out = append(out, s)
		}
	}
	return out
}

// openCounts is how many streams of each product are open.
func (r *clusterRig) openCounts() map[int64]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int64]int)
	for _, s := range r.streams {
		if !s.isClosed() {
			out[s.id]++
		}
	}
	return out
}

// oneStream waits, at most within, until exactly one stream of the
// product is open across the hubs, and returns it.
func (r *clusterRig) oneStream(id int64, within time.Duration) *rigStream {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		open := r.open(id)
		if len(open) == 1 {
			return open[0]
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("product %d: %d streams open after %v, want exactly 1", id, len(open), within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lot is an open lot closing at the rig's close time.
func (r *clusterRig) lot(id int64, price float64, bids int) nellis.Patch {
	p := lot(id, price, bids)
	p.CloseTime = ptr(r.closeAt)
	return p
}

// bid moves the product's upstream price and plays the bid on its one
// open stream; the snapshots say the same, so a new owner's first
// snapshot brings no older price.
func (r *clusterRig) bid(id int64, price float64, bids int) *rigStream {
	r.t.Helper()
	r.ft.set(id, r.lot(id, price, bids))
	s := r.oneStream(id, 0)
	s.obs.StreamEvent(sseupstream.Event{
		Kind: sseupstream.Bid, ProductID: id, Name: "ch_product_bids:x",
		Patch: nellis.Patch{ProductID: id, CurrentBid: ptr(price), BidCount: ptr(bids)}, ReceivedAt: time.Now(),
	})
	return s
}

// watchStreams fails the test whenever two streams of one product are
// open at once, sampling until the test ends.
func (r *clusterRig) watchStreams(ids ...int64) {
	stop, done := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var bad error
	go func() {
		defer close(done)
		watched := make(map[int64]bool, len(ids))
		for _, id := range ids {
			watched[id] = true
		}
		for {
			for id, n := range r.openCounts() {
				if n > 1 && watched[id] {
					mu.Lock()
					if bad == nil {
						bad = fmt.Errorf("product %d: %d upstream streams open at once", id, n)
					}
					mu.Unlock()
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	r.t.Cleanup(func() {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		if bad != nil {
			r.t.Error(bad)
		}
	})
}

// changeLog is a Subscriber that keeps every change it gets.
type changeLog struct {
	mu      sync.Mutex
	changes []*Change
}

func (l *changeLog) Deliver(c *Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, c)
}

func (l *changeLog) all() []*Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Change(nil), l.changes...)
}

// waitPrice waits until the log holds a change at price.
func (l *changeLog) waitPrice(t *testing.T, what string, price float64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		all := l.all()
		if len(all) > 0 && all[len(all)-1].Product.CurrentBid == price {
			return
		}
		if time.Now().After(deadline) {
			last := "nothing"
			if len(all) > 0 {
				c := all[len(all)-1]
				last = fmt.Sprintf("seq %d at %v", c.Seq, c.Product.CurrentBid)
			}
			t.Fatalf("%s: never got price %v; last %s", what, price, last)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkOrder fails unless the changes are of one epoch, with consecutive
// seqs and prices that never go down.
func checkOrder(t *testing.T, what string, changes []*Change) {
	t.Helper()
	for i := 1; i < len(changes); i++ {
		a, b := changes[i-1], changes[i]
		if b.Epoch != a.Epoch || b.Seq != a.Seq+1 {
			t.Fatalf("%s: change %d is %s/%d after %s/%d", what, i, b.Epoch, b.Seq, a.Epoch, a.Seq)
		}
		if b.Product.CurrentBid < a.Product.CurrentBid {
			t.Fatalf("%s: price went down from %v to %v at seq %d", what, a.Product.CurrentBid, b.Product.CurrentBid, b.Seq)
		}
	}
}

// summary is a change as clients tell it apart: epoch, seq and price.
func summary(changes []*Change) string {
	s := ""
	for _, c := range changes {
		s += fmt.Sprintf("%s/%d=%v ", c.Epoch, c.Seq, c.Product.CurrentBid)
	}
	return s
}

// stallBus is a bus whose node can be paused: while it is, renewals fail
// and an append waits, to be sent once the pause ends.
type stallBus struct {
	*cluster.JetStream
	mu   sync.Mutex
	gate chan struct{} // nil: not stalled
}

func (b *stallBus) stall() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gate = make(chan struct{})
}

func (b *stallBus) resume() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.gate)
	b.gate = nil
}

func (b *stallBus) stalled() chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gate
}

func (b *stallBus) Renew(ctx context.Context, l *cluster.Lease) error {
	if b.stalled() != nil {
		return errors.New("stalled")
	}
	return b.JetStream.Renew(ctx, l)
}

func (b *stallBus) Append(_ context.Context, rec cluster.Record, expect uint64) (uint64, error) {
	if g := b.stalled(); g != nil {
		<-g
	}
	// Sent late, as by a process that was paused with it in hand.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return b.JetStream.Append(ctx, rec, expect)
}
