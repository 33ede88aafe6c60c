package module

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFairUseChurnDoesNotDelayClosingPolls: 30 sockets of other users
// subscribe to new products and unsubscribe again as fast as their message
// rate allows, each new product a new feed wanting its first snapshot,
// while a bidder's lot in its closing window is followed by polling alone.
// The lot's polls keep their 1s cadence: the churners' snapshots wait in
// the background and their products are bounded per user.
func TestFairUseChurnDoesNotDelayClosingPolls(t *testing.T) {
	const churners = 30
	sim, simURL := newSimulator(t)
	var users strings.Builder
	for i := range churners {
		fmt.Fprintf(&users, "\n\t\tuser churner%d churn-token-%d", i, i)
	}
	// Every lot closes within 3h, so the whole test is its closing window.
	// poll_concurrency 16 leaves the churners' snapshots slots enough to
	// hold the closing lot's poll back by 16 of poll_rate's tokens (1.6s)
	// if more than one at a time could wait for a token: the one-at-a-time
	// rule for background requests is what keeps it on time.
	startGateway(t, sim, simURL, simURL, "use_sse off\n\t\tclosing_window 3h\n\t\tpoll_concurrency 16\n\t\tconnections_per_minute 200"+users.String())
	lot := sim.Auctions()[0]
	w := watch(t, lot.ID)
	w.await(t, float64(lot.CurrentBid), time.Now().Add(5*time.Second))

	polls := func() int64 { return snapshotRequests(streams(t, sim, lot.ID)) }
	// gaps watches the lot's polls for a while: how many, and the longest
	// time without one (from the window's start, a lower bound, to its end).
	gaps := func(within time.Duration) (n int64, longest time.Duration, all []time.Duration) {
		first := polls()
		last, lastAt := first, time.Now()
		for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if p := polls(); p != last {
				now := time.Now()
				all = append(all, now.Sub(lastAt).Round(time.Millisecond))
				longest = max(longest, now.Sub(lastAt))
				last, lastAt = p, now
			}
		}
		return last - first, max(longest, time.Since(lastAt)), all
	}
	if n, longest, all := gaps(3 * time.Second); n < 2 || longest > 1500*time.Millisecond {
		t.Fatalf("without churn: %d polls in 3s, longest gap %v (%v); want the 1s cadence", n, longest, all)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sentMu sync.Mutex
	sent := 0
	for i := range churners {
		ext, _, err := dialExtension(t, testOrigin)
		if err != nil {
			t.Fatalf("churner %d: %v", i, err)
		}
		ext.send(map[string]any{"type": "authenticate", "token": fmt.Sprint("churn-token-", i), "requestId": "a"})
		if m := ext.next("authenticated", 5*time.Second, nil); m["success"] != true {
			t.Fatalf("churner %d: %v", i, m)
		}
		wg.Add(2)
		go func() { // drains replies, so the churner is never a slow client
			defer wg.Done()
			for {
				if _, _, err := ext.conn.ReadMessage(); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			defer ext.conn.Close()
			tick := time.NewTicker(100 * time.Millisecond) // 20 messages/s: the default rate
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				id := fmt.Sprint(9_000_000 + i*100_000 + n) // a new product each time
				if ext.conn.WriteJSON(map[string]any{"type": "subscribe", "auctionId": id, "requestId": "s"}) != nil ||
					ext.conn.WriteJSON(map[string]any{"type": "unsubscribe", "auctionId": id}) != nil {
					return
				}
				sentMu.Lock()
				sent++
				sentMu.Unlock()
			}
		}()
	}
	n, longest, all := gaps(5 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("while %d churners subscribed to %d new products: %d polls of the closing lot in 5s, longest gap %v (%v)", churners, sent, n, longest, all)
	// Each poll of the lot comes poll_interval_closing (1s, ±10% jitter)
	// after the last one's answer and waits for at most two of the
	// limiter's tokens (poll_rate 10/s): the one background request
	// holding its place, then its own. So a gap is at most about 1.3s and
	// a fetch; 1.6s leaves a fetch on a loaded machine 0.3s, while a poll
	// held back by the churners waits seconds (with the limiter's
	// priorities taken out, no poll came in the 5s; with any number of
	// background requests let in at once, one poll, 2.5s and more after
	// the last). Three polls in 5s follow from that bound. Four, as asked
	// here before, need every gap at or under 1.25s, less than the
	// cadence allows: the polls land on the limiter's 100ms grid, 1.1-1.3s
	// apart on this machine, and a window opening just after a poll saw
	// its fourth 43ms before the end.
	if n < 3 || longest > 1600*time.Millisecond {
		t.Errorf("closing lot polled %d times in 5s, longest gap %v, while churners ran; want its 1s cadence", n, longest)
	}
	if sent < churners*30 {
		t.Errorf("churners sent only %d subscribes: the test did not load the gateway", sent)
	}
}
