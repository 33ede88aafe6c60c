//go:build unix

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/nellissim"
)

// TestClusterStalledOwner (group 5): the owner of an auto-bid lot is
// frozen (SIGSTOP, as a long GC pause or a frozen VM would) while its bid
// is held at the simulator, past its lease. Meanwhile the bid is placed,
// another node takes the lot over and keeps delivering, a rival outbids
// and the new owner answers, and the bidder, on the frozen node, bids by
// hand. Then the node wakes (SIGCONT) with all of it waiting: the held
// bid's answer, the rival's changes on its old stream, the hand bid on
// its socket. What a bidder notices: no client sees a price or a seq go
// back, and every node's clients saw the same price at each seq (nothing
// the woken node had in hand entered the log); the woken node stood down
// (by its lease or the log's fence, in its metrics) and closed its old
// stream, so each lot is back to one upstream stream, and never two once
// it did; the hand bid reached the simulator once, through the new owner
// (refused first as retryable when it met the woken node's late answer in
// the lot's record, and then sent again, as the extension does); and no
// (user, amount) was bid twice.
func TestClusterStalledOwner(t *testing.T) {
	const lease = time.Second
	s := newStack(t, lease, 3, false)
	ids, clients, rivalsOn := s.autoBidding(s.nodes[0])
	auto, busy := ids[0], ids[1:]
	// The node the rendezvous hash ranks first for the lot owns it once
	// any handover is done, and keeps it until it freezes.
	first := cluster.Rendezvous(auto, []string{"a", "b", "c"})
	waitUntil(t, 10*time.Second, "node "+first+" to own the auto-bid lot", func() bool {
		owned, _ := s.owners()
		return owned[auto] == first
	})
	owners := s.ownersOf(ids, 10*time.Second)
	victim := s.node(owners[auto])
	theirs := ownedBy(owners, victim.name)
	others := s.clientsBut(clients, victim)
	stoodDown := func() float64 {
		return s.metric(victim, `nellis_cluster_handovers_total{reason="deposed"`) +
			s.metric(victim, `nellis_cluster_handovers_total{reason="lapsed"`)
	}
	stoodDownBefore := stoodDown()

	// The victim's answer to the rival is held at the simulator; the
	// victim freezes while it is.
	s.sim.SetBidDelay(3 * time.Second)
	arrived := s.bidsArrived.Load()
	held := s.outbid(auto) + 1
	waitUntil(t, 5*time.Second, "the owner's bid at the simulator", func() bool { return s.bidsArrived.Load() > arrived })
	// Its stream stays open, frozen, beside the new owner's until it
	// wakes: the sampler rests.
	s.tolerate.Store(1)
	s.stall(victim)
	stalled := time.Now()
	s.sim.SetBidDelay(0)
	t.Logf("node %s, owner of %v, frozen with its bid on lot %d held at the simulator", victim.name, theirs, auto)

	took := s.takenOver(theirs, victim.name, stalled, 10*time.Second)
	t.Logf("its lots owned elsewhere %v after it froze", took.Round(time.Millisecond))
	if took > lease+time.Second {
		t.Errorf("its lots had a new owner %v after it froze, want within the lease + 1 s (%v)", took, lease+time.Second)
	}
	waitUntil(t, 10*time.Second, fmt.Sprintf("the held bid of $%d placed", held), func() bool {
		return slices.ContainsFunc(s.userBids(auto), func(b nellissim.BidRequest) bool { return b.Amount == held })
	})
	// The other nodes keep delivering, and the new owner answers a rival.
	rivalsOn.Store(false)
	s.outbidAll(busy, others, 5*time.Second)
	s.outbid(auto)
	s.leads(auto, 10*time.Second, "the new owner to bid for the frozen node's bidder")
	price := s.lot(auto).CurrentBid
	for _, c := range others {
		c.waitPrice(auto, price, 5*time.Second)
	}
	// The bidder, on the frozen node, bids by hand: the message waits in
	// the node's socket.
	manual := price + 50
	vc := clients[victim.name]
	from := vc.mark()
	vc.send(map[string]any{"type": "placeBid", "auctionId": fmt.Sprint(auto), "amount": manual, "requestId": "by-hand-1"})
	frozen := time.Since(stalled)

	s.wake(victim)
	woke := time.Now()
	t.Logf("node %s woke after %v", victim.name, frozen.Round(time.Millisecond))
	for attempt := 1; ; attempt++ {
		id := fmt.Sprint("by-hand-", attempt)
		if attempt > 1 {
			from = vc.mark()
			vc.send(map[string]any{"type": "placeBid", "auctionId": fmt.Sprint(auto), "amount": manual, "requestId": id})
		}
		_, res := vc.waitFor(from, 15*time.Second, "the hand bid's result", func(m map[string]any) bool {
			return m["type"] == "bidResult" && m["requestId"] == id
		})
		t.Logf("the hand bid's result %v after the wake: %v", time.Since(woke).Round(time.Millisecond), res)
		if res["success"] == true {
			break
		}
		// The owner refuses a bid whose lot's record moved on while it
		// recorded it (the woken node's late answer lands there): as
		// retryable, and the extension bids again.
		if res["retryable"] != true || attempt == 5 {
			t.Fatalf("the hand bid of $%d, sent on the frozen node, refused: %v", manual, res)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitUntil(t, 5*time.Second, "the woken node to stand down", func() bool { return stoodDown() > stoodDownBefore })
	t.Logf("the woken node stood down %v after it woke (handovers: %v lapsed, %v deposed); its appends refused: %v deposed, %v lapsed",
		time.Since(woke).Round(time.Millisecond),
		s.metric(victim, `nellis_cluster_handovers_total{reason="lapsed"`), s.metric(victim, `nellis_cluster_handovers_total{reason="deposed"`),
		s.metric(victim, `nellis_cluster_appends_total{result="deposed"`), s.metric(victim, `nellis_cluster_appends_total{result="lapsed"`))
	s.oneStreamEach(ids, 5*time.Second, "after the frozen node woke")
	t.Logf("one stream per lot %v after the wake", time.Since(woke).Round(time.Millisecond))
	s.tolerate.Store(0)

	// Everything flows again, to the woken node's client too, and the
	// auto-bidder still bids once per amount.
	all := append(others, vc)
	s.outbidAll(busy, all, 5*time.Second)
	if err := s.sim.EmitBid(auto, manual+1, "rival-a"); err != nil {
		t.Fatal(err)
	}
	s.leads(auto, 10*time.Second, "the auto-bidder to lead after the wake")
	price = s.lot(auto).CurrentBid
	for _, c := range all {
		c.waitPrice(auto, price, 5*time.Second)
	}
	// A late bid from the woken node would come within a lease or so.
	time.Sleep(2 * lease)

	bids := s.userBids(auto)
	var amounts []int
	for _, b := range bids {
		amounts = append(amounts, b.Amount)
	}
	notSent, conflicts := 0, 0.0
	for _, n := range s.nodes {
		notSent += strings.Count(n.proc.out.String(), `"bid not sent"`)
		conflicts += s.metric(n, "nellis_cluster_intent_conflicts_total")
	}
	t.Logf("the bidder's bids on lot %d at the simulator: %v; bids not sent for a record that moved on: %d (intent conflicts %v)", auto, amounts, notSent, conflicts)
	hand := 0
	for _, b := range bids {
		if b.Amount == manual {
			hand++
		}
	}
	if hand != 1 {
		t.Errorf("the hand bid of $%d reached the simulator %d times, want once", manual, hand)
	}
	s.checkNoRepeatedBid(auto)
	s.checkStreams()
	checkClients(t, clients, ids, true)
	checkSameStory(t, clients, ids)
}

// stall stops node n's process (SIGSTOP: what a long GC pause or a
// frozen VM does to a gateway) until wake; the test's end wakes it if
// the test did not, so that no frozen process is left behind.
func (s *stack) stall(n *stackNode) {
	s.t.Helper()
	if err := n.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("node %s: SIGSTOP: %v", n.name, err)
	}
	n.frozen.Store(true)
	s.t.Cleanup(func() { _ = n.proc.cmd.Process.Signal(syscall.SIGCONT) })
}

// wake continues node n's process after stall.
func (s *stack) wake(n *stackNode) {
	s.t.Helper()
	if err := n.proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("node %s: SIGCONT: %v", n.name, err)
	}
	n.frozen.Store(false)
}
