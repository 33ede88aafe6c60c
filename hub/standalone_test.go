package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/natstest"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
)

// One hub cut off from NATS by the network (a TCP proxy cut in the test):
// it stops bidding before its lease ends, the others own its lots within
// lease + 1 s, its late append is fenced out of the log, it serves its own
// subscribers standalone under a fresh epoch and says so, and once the
// network is back there is one stream per lot within lease + 1 s, its
// standalone epoch giving way to the log's.
func TestClusterBusLossStandaloneAndRejoin(t *testing.T) {
	r := newClusterRig(t)
	proxy := r.nats.NewProxy()
	c := r.nodeAt("gw-c", proxy.URL(), nil)
	a, b := r.node("gw-a", nil), r.node("gw-b", nil)
	const shared, mine = 31, 32 // watched everywhere; watched by gw-c only
	for _, id := range []int64{shared, mine} {
		r.ft.set(id, r.lot(id, 100, 4))
	}
	logs := subscribeAll([]*rigNode{c}, shared, mine)
	for _, id := range []int64{shared, mine} {
		if s := r.oneStream(id, 5*time.Second); s.node != "gw-c" {
			t.Fatalf("product %d streamed by %s, want gw-c, the only one watching", id, s.node)
		}
	}
	for name, ls := range subscribeAll([]*rigNode{a, b}, shared) {
		logs[name] = ls
	}
	r.bid(shared, 101, 5)
	for _, n := range []*rigNode{a, b, c} {
		logs[n.name][shared].waitPrice(t, n.name, 101)
	}
	r.bid(mine, 101, 5)
	logs["gw-c"][mine].waitPrice(t, "gw-c", 101)
	logEpoch := map[int64]string{}
	for _, id := range []int64{shared, mine} {
		all := logs["gw-c"][id].all()
		logEpoch[id] = all[len(all)-1].Epoch
	}
	if !c.h.Owns(shared) || c.h.Standalone() {
		t.Fatal("gw-c should own the lot, connected")
	}
	cOld := r.open(shared)[0]

	proxy.Cut()
	cut := time.Now()
	// A change in hand as the network goes: its append cannot be sent
	// now, and once the network is back the log has moved on.
	cOld.obs.StreamEvent(sseupstream.Event{
		Kind: sseupstream.Bid, ProductID: shared, Name: "ch_product_bids:x",
		Patch: nellis.Patch{ProductID: shared, CurrentBid: ptr(150.0), BidCount: ptr(9)}, ReceivedAt: time.Now(),
	})
	// It stops bidding on both before its lease can end: on the one
	// with a change in hand when the append fails, on the other when
	// the lease stops being valid.
	for _, id := range []int64{shared, mine} {
		for c.h.Owns(id) {
			time.Sleep(time.Millisecond)
		}
		if stopped := time.Since(cut); stopped >= testLease {
			t.Fatalf("gw-c stopped bidding on %d %v after the cut, not before its lease (%v) could end", id, stopped, testLease)
		} else {
			t.Logf("gw-c stopped bidding on %d %v after the cut", id, stopped.Round(time.Millisecond))
		}
	}
	// The others own the shared lot within lease + 1 s.
	deadline := cut.Add(testLease + time.Second)
	var other *rigStream
	for other == nil {
		for _, s := range r.open(shared) {
			if s.node != "gw-c" {
				other = s
			}
		}
		if other == nil && time.Now().After(deadline) {
			t.Fatalf("no other node owned product %d within %v of the cut", shared, testLease+time.Second)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%s owns product %d %v after the cut", other.node, shared, time.Since(cut).Round(time.Millisecond))
	// gw-c stepped down before: its status no longer says owner (its
	// release of the lease may still be waiting on NATS).
	if role := statusOf(c.h, shared).Role; role == "owner" {
		t.Errorf("gw-c reports itself owner of product %d while %s streams it", shared, other.node)
	}
	r.ft.set(shared, r.lot(shared, 120, 10))
	other.obs.StreamEvent(sseupstream.Event{
		Kind: sseupstream.Bid, ProductID: shared, Name: "ch_product_bids:x",
		Patch: nellis.Patch{ProductID: shared, CurrentBid: ptr(120.0), BidCount: ptr(10)}, ReceivedAt: time.Now(),
	})
	logs["gw-a"][shared].waitPrice(t, "gw-a", 120)
	logs["gw-b"][shared].waitPrice(t, "gw-b", 120)

	// gw-c, a lease without NATS: standalone, each lot on its own stream
	// under a fresh epoch, and it says so.
	waitFor(t, "gw-c standalone", c.h.Standalone)
	if a.h.Standalone() || b.h.Standalone() {
		t.Fatal("connected hubs report standalone")
	}
	for _, id := range []int64{shared, mine} {
		s := waitStreamOf(t, r, id, "gw-c")
		r.ft.set(id, r.lot(id, 130, 11))
		s.obs.StreamEvent(sseupstream.Event{
			Kind: sseupstream.Bid, ProductID: id, Name: "ch_product_bids:x",
			Patch: nellis.Patch{ProductID: id, CurrentBid: ptr(130.0), BidCount: ptr(11)}, ReceivedAt: time.Now(),
		})
		logs["gw-c"][id].waitPrice(t, fmt.Sprintf("gw-c standalone, product %d", id), 130)
		last := lastChange(logs["gw-c"][id])
		if last.Epoch == logEpoch[id] {
			t.Fatalf("product %d: standalone change in the log's epoch %s; want a fresh one", id, last.Epoch)
		}
		if _, ok := c.h.Since(id, logEpoch[id], 1); ok {
			t.Fatalf("product %d: a client of the log's epoch resumes as recovered on the standalone node", id)
		}
		if role := statusOf(c.h, id).Role; role != "standalone" {
			t.Fatalf("product %d: role %q on gw-c, want standalone", id, role)
		}
		if c.h.Owns(id) {
			t.Fatalf("product %d: gw-c owns it standalone (it would bid)", id)
		}
	}

	// A lot first watched while cut off is served standalone at once,
	// without waiting on a log it cannot read.
	const late = 33
	r.ft.set(late, r.lot(late, 100, 4))
	asked := time.Now()
	c.h.Subscribe(late, new(changeLog))
	waitStreamOf(t, r, late, "gw-c")
	if took := time.Since(asked); took > 500*time.Millisecond {
		t.Fatalf("a lot first watched while cut off: its stream opened %v later", took)
	}

	proxy.Restore()
	restored := time.Now()
	// Within lease + 1 s: one stream per lot, and gw-c no longer serves
	// the shared lot standalone (its own lot it serves throughout, first
	// standalone, then as its owner again).
	deadline = restored.Add(testLease + time.Second)
	for _, id := range []int64{shared, mine} {
		for {
			open := r.open(id)
			if len(open) == 1 && (id == mine || statusOf(c.h, id).Role != "standalone") {
				t.Logf("product %d: one stream (%s) %v after the restore", id, open[0].node, time.Since(restored).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("product %d: %d streams open, gw-c %s, %v after the restore", id, len(open), statusOf(c.h, id).Role, testLease+time.Second)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if c.h.Standalone() {
		t.Fatal("gw-c still standalone after the restore")
	}
	waitFor(t, "gw-c owning its own lot again", func() bool { return c.h.Owns(mine) })
	t.Logf("gw-c owns product %d again %v after the restore", mine, time.Since(restored).Round(time.Millisecond))
	// One stream each from now on, and every hub on the log's epoch.
	r.watchStreams(shared, mine)
	r.bid(shared, 140, 12)
	r.bid(mine, 140, 12)
	for _, n := range []*rigNode{a, b, c} {
		logs[n.name][shared].waitPrice(t, n.name, 140)
		if got := lastChange(logs[n.name][shared]).Epoch; got != logEpoch[shared] {
			t.Fatalf("%s product %d: epoch %s after the rejoin, want the log's %s", n.name, shared, got, logEpoch[shared])
		}
	}
	logs["gw-c"][mine].waitPrice(t, "gw-c", 140)
	if got := lastChange(logs["gw-c"][mine]).Epoch; got != logEpoch[mine] {
		t.Fatalf("gw-c product %d: epoch %s after the rejoin, want the log's %s", mine, got, logEpoch[mine])
	}
	// Giving way, gw-c's subscriber got the log's newest state, not its
	// history one change at a time (older prices after its standalone
	// ones); the history is there for a client that resumes.
	var back []float64
	alone := false
	for _, ch := range logs["gw-c"][shared].all() {
		alone = alone || ch.Epoch != logEpoch[shared]
		if alone && ch.Epoch == logEpoch[shared] && ch.Product.CurrentBid < 140 {
			back = append(back, ch.Product.CurrentBid)
		}
	}
	if len(back) != 1 || back[0] != 120 {
		t.Errorf("gw-c's subscriber got the log's prices %v on giving way, want only its newest (120)", back)
	}
	if got, ok := c.h.Since(shared, logEpoch[shared], 1); !ok || len(got) < 3 {
		t.Errorf("gw-c resumes the log's epoch from seq 1 with %d changes (recovered %v), want its history", len(got), ok)
	}

	// The change gw-c had in hand at the cut never reached the log.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	entries, err := a.bus.Backfill(ctx, shared, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var p nellis.Product
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.CurrentBid == 150 {
			t.Fatalf("gw-c's append from before the cut is in the log at seq %d: not fenced", e.Seq)
		}
	}
	for _, n := range []*rigNode{a, b} {
		for _, ch := range logs[n.name][shared].all() {
			if ch.Product.CurrentBid == 150 {
				t.Fatalf("%s got gw-c's change from before the cut", n.name)
			}
		}
	}
}

func lastChange(l *changeLog) *Change {
	all := l.all()
	return all[len(all)-1]
}

func statusOf(h *Hub, id int64) FeedStatus {
	for _, s := range h.Status() {
		if s.ProductID == id {
			return s
		}
	}
	return FeedStatus{}
}

// waitStreamOf waits until node has an open stream of the product.
func waitStreamOf(t *testing.T, r *clusterRig, id int64, node string) *rigStream {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, s := range r.open(id) {
			if s.node == node {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("product %d: %s opened no stream", id, node)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// One hub whose NATS server stays connected but answers no JetStream
// call (the proxy sends it to a server without JetStream, as a server on
// the minority side of a NATS partition answers no write): it stops
// bidding before its lease ends, another hub owns its lot within lease +
// 1 s and never while it still may act, it goes standalone within lease +
// 1 s, and once JetStream answers again it rejoins with one stream.
func TestClusterJetStreamLossStandaloneAndRejoin(t *testing.T) {
	r := newClusterRig(t)
	core := natstest.StartCore(t)
	proxy := r.nats.NewProxy()
	c := r.nodeAt("gw-c", proxy.URL(), nil)
	a := r.node("gw-a", nil)
	const id = 51
	r.ft.set(id, r.lot(id, 100, 4))
	logs := subscribeAll([]*rigNode{c}, id)
	if s := r.oneStream(id, 5*time.Second); s.node != "gw-c" {
		t.Fatalf("streamed by %s, want gw-c, the only one watching", s.node)
	}
	for name, ls := range subscribeAll([]*rigNode{a}, id) {
		logs[name] = ls
	}
	r.bid(id, 101, 5)
	logs["gw-a"][id].waitPrice(t, "gw-a", 101)
	logEpoch := lastChange(logs["gw-c"][id]).Epoch

	proxy.Redirect(core)
	cut := time.Now()
	deadline := cut.Add(testLease + time.Second)
	var stoppedAt, ownedAt, aloneAt time.Time
	for stoppedAt.IsZero() || ownedAt.IsZero() || aloneAt.IsZero() {
		now := time.Now()
		cOwns, aOwns := c.h.Owns(id), a.h.Owns(id)
		if cOwns && aOwns {
			t.Fatalf("%v after JetStream went: both hubs own the lot", now.Sub(cut))
		}
		if stoppedAt.IsZero() && !cOwns {
			stoppedAt = now
		}
		if ownedAt.IsZero() && aOwns {
			ownedAt = now
		}
		if aloneAt.IsZero() && c.h.Standalone() {
			aloneAt = now
		}
		if now.After(deadline) {
			t.Fatalf("%v after JetStream went: gw-c stopped %v, gw-a owns %v, gw-c standalone %v",
				now.Sub(cut), !stoppedAt.IsZero(), !ownedAt.IsZero(), !aloneAt.IsZero())
		}
		time.Sleep(time.Millisecond)
	}
	if stoppedAt.Sub(cut) >= testLease {
		t.Fatalf("gw-c stopped bidding %v after JetStream went, not before its lease (%v) could end", stoppedAt.Sub(cut), testLease)
	}
	t.Logf("after JetStream went: gw-c stopped bidding %v, gw-a owns %v, gw-c standalone %v", stoppedAt.Sub(cut).Round(time.Millisecond),
		ownedAt.Sub(cut).Round(time.Millisecond), aloneAt.Sub(cut).Round(time.Millisecond))
	if a.h.Standalone() {
		t.Fatal("gw-a, connected to JetStream, reports standalone")
	}
	// Standalone, gw-c serves its subscriber from its own stream under a
	// fresh epoch.
	s := waitStreamOf(t, r, id, "gw-c")
	r.ft.set(id, r.lot(id, 130, 11))
	s.obs.StreamEvent(sseupstream.Event{
		Kind: sseupstream.Bid, ProductID: id, Name: "ch_product_bids:x",
		Patch: nellis.Patch{ProductID: id, CurrentBid: ptr(130.0), BidCount: ptr(11)}, ReceivedAt: time.Now(),
	})
	logs["gw-c"][id].waitPrice(t, "gw-c standalone", 130)
	if got := lastChange(logs["gw-c"][id]).Epoch; got == logEpoch {
		t.Fatalf("standalone change in the log's epoch %s; want a fresh one", got)
	}
	if role := statusOf(c.h, id).Role; role != "standalone" {
		t.Fatalf("role %q on gw-c, want standalone", role)
	}

	proxy.Redirect(r.nats)
	back := time.Now()
	deadline = back.Add(testLease + time.Second)
	for {
		open := r.open(id)
		if !c.h.Standalone() && len(open) == 1 && statusOf(c.h, id).Role != "standalone" {
			t.Logf("rejoined with one stream (%s) %v after JetStream came back", open[0].node, time.Since(back).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after JetStream came back: standalone %v, %d streams, gw-c %s", testLease+time.Second,
				c.h.Standalone(), len(open), statusOf(c.h, id).Role)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.watchStreams(id)
	r.bid(id, 140, 12)
	for _, n := range []*rigNode{a, c} {
		logs[n.name][id].waitPrice(t, n.name, 140)
		if got := lastChange(logs[n.name][id]).Epoch; got != logEpoch {
			t.Fatalf("%s: epoch %s after the rejoin, want the log's %s", n.name, got, logEpoch)
		}
	}
}

// A hub with no feed at all, cut off from NATS: it is standalone as a
// hub with feeds is, and tells its Standalone hook (the metric behind
// nellis_cluster_standalone) so, and again once NATS is back. Before, the
// hook was told only by a goroutine the first feed started, so an idle
// node's gauge stayed 0 while its readiness answered 503.
func TestClusterStandaloneHookWithoutFeeds(t *testing.T) {
	r := newClusterRig(t)
	proxy := r.nats.NewProxy()
	told := make(chan bool, 16)
	c := r.nodeAt("gw-idle", proxy.URL(), nil, func(d *Deps) {
		d.Hooks.Standalone = func(alone bool) { told <- alone }
	})
	hookSays := func(want bool) {
		t.Helper()
		select {
		case got := <-told:
			if got != want {
				t.Fatalf("Standalone hook told %v, want %v", got, want)
			}
		case <-time.After(testLease + waitTimeout):
			t.Fatalf("Standalone hook not told %v within %v (hub standalone: %v)", want, testLease+waitTimeout, c.h.Standalone())
		}
	}

	proxy.Cut()
	hookSays(true)
	if !c.h.Standalone() {
		t.Fatal("hook told standalone, hub does not say so")
	}
	if n := len(c.h.Status()); n != 0 {
		t.Fatalf("%d feeds, want none", n)
	}
	proxy.Restore()
	hookSays(false)
	if c.h.Standalone() {
		t.Fatal("hook told back, hub still says standalone")
	}
}
