package hub

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/settings"
)

// streamsOnRendezvous waits, at most within, until each product's one
// open stream is on the node the rendezvous hash picks among names.
func (r *clusterRig) streamsOnRendezvous(ids []int64, names []string, within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		wrong := ""
		for _, id := range ids {
			open := r.open(id)
			if want := cluster.Rendezvous(id, names); len(open) != 1 || open[0].node != want {
				wrong += fmt.Sprintf(" %d (%d open, want on %s)", id, len(open), want)
			}
		}
		if wrong == "" {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("not every lot on its rendezvous node within %v:%s", within, wrong)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A node killed mid-auction comes back: the survivors took its lots, and
// hand them back to it, each lot to the node the rendezvous hash ranks
// first, within a bounded time; never two streams of a lot, every client
// sees one epoch with consecutive seqs and no lower price, and once spread
// the lots stay where they are.
func TestClusterOwnershipReturnsToTheRendezvousChoice(t *testing.T) {
	r := newClusterRig(t)
	r.lease = starvedLease
	names := []string{"gw-a", "gw-b", "gw-c"}
	var ids []int64
	for id := int64(41); id <= 52; id++ {
		ids = append(ids, id)
	}
	var mu sync.Mutex
	var away []string // lots handed away by their rendezvous node
	handed := 0
	watchHandovers := func(name string) func(*Deps) {
		return func(d *Deps) {
			d.Hooks.Ownership = func(id int64, owned bool, reason string) {
				if owned || reason != HandoverHanded {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				handed++
				if cluster.Rendezvous(id, names) == name {
					away = append(away, fmt.Sprintf("%s handed %d away", name, id))
				}
			}
		}
	}
	nodes := []*rigNode{
		r.node("gw-a", nil, watchHandovers("gw-a")),
		r.node("gw-b", nil, watchHandovers("gw-b")),
		r.node("gw-c", nil, watchHandovers("gw-c")),
	}
	for _, id := range ids {
		r.ft.set(id, r.lot(id, 100, 4))
	}
	r.watchStreams(ids...)
	logs := subscribeAll(nodes, ids...)
	lease := r.leaseOf()
	// Whoever claimed first, each lot moves to its rendezvous node: a
	// lease of interest before its node asks, two leases of owning before
	// an owner hands over; the rest is for a loaded machine.
	r.streamsOnRendezvous(ids, names, 3*lease+waitTimeout)

	dead := nodes[2]
	var deadLots []int64
	for _, id := range ids {
		if cluster.Rendezvous(id, names) == dead.name {
			deadLots = append(deadLots, id)
		}
	}
	if len(deadLots) == 0 {
		t.Fatal("gw-c is the rendezvous choice for none of the lots; pick others")
	}
	_ = dead.jet.Close() // killed: no release
	dead.h.Close()
	killed := time.Now()
	for _, id := range deadLots {
		if s := r.oneStream(id, lease+time.Second); s.node == dead.name {
			t.Fatalf("product %d: the dead node's stream is open", id)
		}
	}
	t.Logf("the survivors own gw-c's %d lots %v after its death", len(deadLots), time.Since(killed).Round(time.Millisecond))
	price := 100.0
	bidAll := func(live []*rigNode) {
		price++
		for _, id := range ids {
			r.bidEverywhere(live, logs, id, price, int(price), time.Now().Add(waitTimeout))
		}
	}
	bidAll(nodes[:2])

	back := r.node("gw-c", nil, watchHandovers("gw-c"))
	logs["gw-c"] = subscribeAll([]*rigNode{back}, ids...)["gw-c"]
	returned := time.Now()
	// A lease of interest before it asks, two leases of owning before an
	// owner hands over, a lease between asks: within two leases of its
	// return on a quiet machine.
	r.streamsOnRendezvous(ids, names, 3*lease+2*time.Second)
	t.Logf("gw-c's lots are back on it %v after its return", time.Since(returned).Round(time.Millisecond))

	// Spread, they stay: over two more leases no lot leaves its
	// rendezvous node by a handover, and each handover so far moved a
	// lot towards it (at most one per node ranked above its owner).
	time.Sleep(2 * lease)
	mu.Lock()
	if len(away) > 0 || handed > 2*len(ids) {
		t.Errorf("%d handovers for %d lots; away from their rendezvous node: %v", handed, len(ids), away)
	}
	t.Logf("%d handovers in all", handed)
	mu.Unlock()
	live := []*rigNode{nodes[0], nodes[1], back}
	bidAll(live)
	for _, n := range live {
		for _, id := range ids {
			got := logs[n.name][id].all()
			checkOrder(t, fmt.Sprintf("%s product %d", n.name, id), got)
			if n != back && got[0].Seq != 1 {
				t.Errorf("%s product %d: first seq %d, want 1", n.name, id, got[0].Seq)
			}
			if got[0].Epoch != logs["gw-a"][id].all()[0].Epoch {
				t.Errorf("%s product %d: epoch %s, gw-a's %s", n.name, id, got[0].Epoch, logs["gw-a"][id].all()[0].Epoch)
			}
		}
	}
	// Only the owner bids.
	for _, id := range ids {
		want := cluster.Rendezvous(id, names)
		for _, n := range live {
			waitFor(t, fmt.Sprintf("%s owns %d for bidding: %v", n.name, id, n.name == want), func() bool { return n.h.Owns(id) == (n.name == want) })
		}
	}
}

// A lot in or near its closing window stays with the node that owns it,
// though a node ranked higher watches it; a lot far from closing moves,
// but only once its owner has held it for two leases.
func TestClusterClosingLotIsNotHandedOver(t *testing.T) {
	r := newClusterRig(t)
	r.lease = starvedLease
	lease := r.leaseOf()
	names := []string{"gw-a", "gw-b"}
	var closing, far int64
	for id := int64(60); closing == 0 || far == 0; id++ {
		if cluster.Rendezvous(id, names) != "gw-b" {
			continue
		}
		if closing == 0 {
			closing = id
		} else {
			far = id
		}
	}
	r.ft.set(far, r.lot(far, 100, 4))
	p := r.lot(closing, 100, 4)
	p.CloseTime = ptr(time.Now().Add(100 * time.Second)) // within closing_window + stream_closing_margin
	r.ft.set(closing, p)
	a := r.node("gw-a", nil)
	r.watchStreams(closing, far)
	for _, id := range []int64{closing, far} {
		a.h.Subscribe(id, new(changeLog))
		if s := r.oneStream(id, 5*time.Second); s.node != "gw-a" {
			t.Fatalf("product %d: %s owns it, want gw-a, the only one watching", id, s.node)
		}
	}
	owned := time.Now() // a little after gw-a claimed: its stream is open
	b := r.node("gw-b", nil)
	for _, id := range []int64{closing, far} {
		b.h.Subscribe(id, new(changeLog))
	}
	r.streamOn(far, "gw-b", 3*lease+time.Second)
	// gw-b asks a lease into its interest; gw-a hands over two leases
	// into its ownership, not before.
	if held := time.Since(owned); held < 2*lease-300*time.Millisecond {
		t.Fatalf("gw-a handed the lot over after owning it %v, under two leases", held)
	}
	until := time.Now().Add(lease)
	for time.Now().Before(until) {
		if s := r.oneStream(closing, 0); s.node != "gw-a" {
			t.Fatalf("the closing lot moved to %s", s.node)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A reader times each change it takes from another node's log as it
// arrives, from the owner's receipt (Hooks.LogPublished); the owner times
// none, nor does a reader for the log's past it reads on joining.
func TestClusterReaderTimesChangesFromTheLog(t *testing.T) {
	r := newClusterRig(t)
	timed := func(ch chan time.Time) func(*Deps) {
		return func(d *Deps) {
			d.Hooks.LogPublished = func(at time.Time) { ch <- at }
		}
	}
	ta, tb, tc := make(chan time.Time, 64), make(chan time.Time, 64), make(chan time.Time, 64)
	const id = 71
	r.ft.set(id, r.lot(id, 100, 4))
	a := r.node("gw-a", nil, timed(ta))
	la := new(changeLog)
	a.h.Subscribe(id, la)
	if s := r.oneStream(id, 5*time.Second); s.node != "gw-a" {
		t.Fatalf("%s owns the lot, want gw-a", s.node)
	}
	r.bid(id, 101, 5)
	la.waitPrice(t, "gw-a", 101)
	b := r.node("gw-b", nil, timed(tb))
	lb := new(changeLog)
	b.h.Subscribe(id, lb)
	lb.waitPrice(t, "gw-b", 101) // from the log's past
	r.bid(id, 102, 6)
	lb.waitPrice(t, "gw-b", 102)
	c := r.node("gw-c", nil, timed(tc))
	c.h.Subscribe(id, new(changeLog))
	r.bid(id, 103, 7)
	lb.waitPrice(t, "gw-b", 103)
	// The owner appends before it publishes here, so a reader may have a
	// change before the owner's own subscriber does.
	la.waitPrice(t, "gw-a", 103)

	owned := la.all()
	receivedAt := map[float64]time.Time{}
	for _, ch := range owned {
		receivedAt[ch.Product.CurrentBid] = ch.ReceivedAt
	}
	var got []time.Time
	for len(got) < 2 {
		select {
		case at := <-tb:
			got = append(got, at)
		case <-time.After(waitTimeout):
			t.Fatalf("gw-b timed %d changes from the log, want 2", len(got))
		}
	}
	if !got[0].Equal(receivedAt[102]) || !got[1].Equal(receivedAt[103]) {
		t.Fatalf("gw-b timed from %v, want the owner's receipts of 102 and 103 (%v, %v)", got, receivedAt[102], receivedAt[103])
	}
	select {
	case at := <-tb:
		t.Fatalf("gw-b timed a change from %v: the log's past read on joining", at)
	case at := <-ta:
		t.Fatalf("the owner timed a change from %v as if read from the log", at)
	case <-time.After(200 * time.Millisecond):
	}
	if len(tc) > 1 {
		t.Fatalf("gw-c timed %d changes, want at most the one after it joined", len(tc))
	}
}

// A reload (a new config applied in place) keeps every lease and stream;
// a graceful stop hands each lot of the node that owned the most over to
// another node within a second, and prices go on.
func TestClusterReloadKeepsLeasesGracefulStopHandsOverWithinASecond(t *testing.T) {
	r := newClusterRig(t)
	r.lease = starvedLease
	var ids []int64
	for id := int64(81); id <= 92; id++ {
		ids = append(ids, id)
	}
	nodes, logs := r.threeHubsFollowing(ids...)
	// Spread first, so that no handover moves a lot during the reload.
	r.streamsOnRendezvous(ids, []string{"gw-a", "gw-b", "gw-c"}, 3*r.leaseOf()+waitTimeout)
	owned := map[string][]int64{}
	before := map[int64]*rigStream{}
	for _, id := range ids {
		s := r.oneStream(id, 0)
		owned[s.node] = append(owned[s.node], id)
		before[id] = s
	}

	cfg := r.hubConfig()
	cfg.Linger = settings.Duration(45 * time.Second)
	cfg.Poll.Fallback = settings.Duration(3 * time.Second)
	for _, n := range nodes {
		n.h.UpdateConfig(cfg)
	}
	// Two leases later: the same streams, the same owners.
	time.Sleep(2 * r.leaseOf())
	for _, id := range ids {
		if s := r.oneStream(id, 0); s != before[id] {
			t.Fatalf("product %d: its stream changed across the reload (%s, then %s)", id, before[id].node, s.node)
		}
		for _, n := range nodes {
			if n.h.Owns(id) != (n.name == before[id].node) {
				t.Fatalf("product %d: %s Owns %v after the reload, owner %s", id, n.name, n.h.Owns(id), before[id].node)
			}
		}
	}

	busiest := nodes[0]
	for _, n := range nodes {
		if len(owned[n.name]) > len(owned[busiest.name]) {
			busiest = n
		}
	}
	stopping := time.Now()
	busiest.h.Close() // graceful: releases what it owns
	for _, id := range owned[busiest.name] {
		s := r.oneStreamNot(id, busiest.name, time.Second-time.Since(stopping))
		if s.node == busiest.name {
			t.Fatalf("product %d: the stopped node's stream is open", id)
		}
	}
	t.Logf("%s's %d lots owned elsewhere %v after its stop began", busiest.name, len(owned[busiest.name]), time.Since(stopping).Round(time.Millisecond))
	var live []*rigNode
	for _, n := range nodes {
		if n != busiest {
			live = append(live, n)
		}
	}
	for _, id := range ids {
		r.bidEverywhere(live, logs, id, 150, 9, time.Now().Add(waitTimeout))
	}
	for _, n := range live {
		for _, id := range ids {
			checkOrder(t, fmt.Sprintf("%s product %d", n.name, id), logs[n.name][id].all())
		}
	}
}
