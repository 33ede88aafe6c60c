package hub

import (
	"cmp"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// rebalanceEvery is how often the hub looks again at which lots hold its
// MaxStreams stream slots and what the poll budget covers: time alone moves
// a lot into its closing window, and it must have a stream within a second.
const rebalanceEvery = 250 * time.Millisecond

// streamHysteresis is how much longer a lot that holds a stream counts as
// closing, and how much sooner a challenger must close than a streamed lot
// of its own rank to take its stream: a close time moved by a late bid, or
// two lots closing seconds apart, must not pass a stream back and forth.
const streamHysteresis = 30 * time.Second

// AutoBidder is a Subscriber that bids for users (the auto-bid engine's
// worker). While one follows a lot, the lot ranks above lots only watched
// when streams are short: a missed change there costs a bid.
type AutoBidder interface {
	Subscriber
	AutoBids() bool
}

// slotClaim is a feed's side of the stream slots, guarded by Hub.mu: the
// feed says what it wants and what it knows, the rebalancer decides.
type slotClaim struct {
	want    bool      // the feed would open a stream if granted
	closeAt time.Time // the lot's close time; zero when unknown
	over    bool      // the lot is over: no stream, no polls
	healthy bool      // a healthy stream feeds it
	granted bool      // the feed may open a stream
	holding bool      // a stream is open: a slot is in use
	reader  bool      // a cluster reader: it streams and polls nothing here
	// watchers is the lot's watcher count as the rebalancer last asked
	// it, at watchersAt (see watchersFresh); only the rebalancer sets it.
	watchers   int
	watchersAt time.Time
}

// watchersFresh is how long the rebalancer trusts a lot's watcher count.
// Counts only order lots of the same rank and move no open stream, and
// asking the users' directory for 5,000 lots four times a second took a
// sixth of a 5,000-lot gateway's CPU.
const watchersFresh = 5 * time.Second

// The ranks of a lot wanting a stream, best first.
const (
	tierClosing = iota // in its closing window
	tierNear           // within StreamClosingMargin of it
	tierAutoBid        // someone auto-bids on it
	tierWatched        // the rest, by watchers
)

type streamRank struct {
	f        *feed
	tier     int
	left     time.Duration // time left; huge when unknown
	watchers int
}

const unknownLeft = time.Duration(1<<62 - 1)

// rankOf ranks a feed. An incumbent (a feed holding a grant) counts as
// closing streamHysteresis earlier, so that it does not drop a tier and win
// it back as its close time moves a little.
func (h *Hub) rankOf(f *feed, c slotClaim, now time.Time, incumbent bool, watchers int) streamRank {
	r := streamRank{f: f, tier: tierWatched, left: unknownLeft, watchers: watchers}
	if !c.closeAt.IsZero() {
		r.left = c.closeAt.Sub(now)
	}
	left := r.left
	if incumbent && left != unknownLeft {
		left -= streamHysteresis
	}
	window := time.Duration(h.cfg.Poll.ClosingWindow)
	switch {
	case left <= window:
		r.tier = tierClosing
	case left <= window+time.Duration(h.cfg.StreamClosingMargin):
		r.tier = tierNear
	case f.autoBid.Load():
		r.tier = tierAutoBid
	}
	return r
}

// better orders ranks best first: tier; then, for closing lots, time left;
// then watchers; then time left; then product id, so the order is total.
func better(a, b streamRank) int {
	if c := cmp.Compare(a.tier, b.tier); c != 0 {
		return c
	}
	if a.tier <= tierNear {
		if c := cmp.Compare(a.left, b.left); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(b.watchers, a.watchers); c != 0 {
		return c
	}
	if c := cmp.Compare(a.left, b.left); c != 0 {
		return c
	}
	return cmp.Compare(a.f.id, b.f.id)
}

// displaces reports whether challenger c should take incumbent i's stream.
// Across tiers the better tier wins; within the closing tiers a lot closing
// more than streamHysteresis sooner wins; watchers alone never move a
// stream that is open, only decide who gets a free one.
func displaces(c, i streamRank) bool {
	if c.tier != i.tier {
		return c.tier < i.tier
	}
	return c.tier <= tierNear && c.left+streamHysteresis < i.left
}

// claim records what feed f wants and knows, and reports whether it may
// hold a stream. A change of what it wants wakes the rebalancer.
func (h *Hub) claim(f *feed, want, over, healthy bool, closeAt time.Time) (granted bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &f.slot
	changed := c.want != want || !c.closeAt.Equal(closeAt) || c.over != over || c.healthy != healthy
	c.want, c.over, c.healthy, c.closeAt = want, over, healthy, closeAt
	if changed {
		h.kickRebalance()
	}
	return c.granted && want
}

// hold records whether f has a stream open (a slot in use). Releasing one
// wakes the rebalancer, which hands the slot on.
func (h *Hub) hold(f *feed, holding bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.slot.holding == holding {
		return
	}
	f.slot.holding = holding
	if holding {
		h.streams++
	} else {
		h.streams--
		h.kickRebalance()
	}
}

// kickRebalance asks for a pass now; the caller holds h.mu.
func (h *Hub) kickRebalance() {
	select {
	case h.rebalanceKick <- struct{}{}:
	default:
	}
}

// startRebalancer starts the hub's one rebalancer goroutine; the caller
// holds h.mu. Close ends it.
func (h *Hub) startRebalancer() {
	if h.rebalancing {
		return
	}
	h.rebalancing = true
	h.running.Add(1)
	go func() {
		defer h.running.Done()
		h.rebalanceLoop()
	}()
}

// rebalanceDuty bounds the rebalancer's CPU however often it is woken:
// on an auction night lots closing, streams handed on and breakers wake it
// dozens of times a second, and a pass over 5,000 lots costs milliseconds.
// After a wake-up it first rests rebalanceDuty times what its last pass
// cost (real time: this is about the CPU, not the hub's clock), so it
// takes at most about a twentieth of a core; wake-ups meanwhile are served
// by one pass. A pass over a few lots costs microseconds and rests as long.
const rebalanceDuty = 20

// maxRest bounds that rest, so that a lot entering its closing window is
// still promoted within a second on a slow machine.
const maxRest = 500 * time.Millisecond

func (h *Hub) rebalanceLoop() {
	for {
		// The next pass is due a tick after this one began, however long
		// it took: the cadence holds, and time that moved during the pass
		// is seen at once.
		start := time.Now()
		began := h.rebalance()
		cost := time.Since(start)
		h.scratch.busy.Add(int64(cost))
		h.scratch.passes.Add(1)
		t := h.clock.NewTimer(began.Add(rebalanceEvery))
		select {
		case <-h.stop:
			t.Stop()
			return
		case <-h.rebalanceKick:
			t.Stop()
			if !h.rest(min(rebalanceDuty*cost, maxRest)) {
				return
			}
		case <-t.C():
		}
		t.Stop()
	}
}

// rest waits d of real time; false when the hub closes meanwhile.
func (h *Hub) rest(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-h.stop:
		return false
	case <-t.C:
		return true
	}
}

// rebalance hands out the stream slots by rank and weighs the poll budget.
// A lot that ranks above a streamed one while no slot is free takes that
// lot's stream: the streamed lot is told to close it (and goes to polling,
// healing any gap from a snapshot), and the slot goes, once released, to
// the best lot waiting.
func (h *Hub) rebalance() (now time.Time) {
	now = h.clock.Now()
	h.mu.Lock()
	// The scratch slices are the rebalancer's alone, reused pass to pass.
	feeds, claims := h.scratch.feeds[:0], h.scratch.claims[:0]
	contended := false
	for _, f := range h.feeds {
		feeds = append(feeds, f)
		claims = append(claims, f.slot)
		if f.slot.want && !f.slot.granted {
			contended = true
		}
	}
	cfg := h.cfg
	h.mu.Unlock()

	for _, f := range h.allot(now, feeds, claims, contended) {
		f.poke()
	}
	h.weighBudget(now, cfg, claims)
	clear(feeds) // no feed kept alive by the scratch
	h.scratch.feeds, h.scratch.claims = feeds, claims
	return now
}

// rebalanceScratch holds what a pass builds, for the next to reuse.
type rebalanceScratch struct {
	feeds             []*feed
	claims            []slotClaim
	waiting, streamed []streamRank
	fetches           fetchCounts // the budget's counts of fetches
	stated            statedIntervals
	busy, passes      atomic.Int64 // nanoseconds spent in passes, and passes, for tests
}

// allot grants and takes back stream slots, and returns the feeds to wake.
func (h *Hub) allot(now time.Time, feeds []*feed, claims []slotClaim, contended bool) (pokes []*feed) {
	if !contended {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, f := range feeds {
			if f.slot.granted && !f.slot.want {
				f.slot.granted = false
			}
		}
		return nil
	}
	// Watchers are asked outside h.mu: Deps.Watchers takes its own lock.
	waiting, streamed := h.scratch.waiting[:0], h.scratch.streamed[:0]
	defer func() {
		clear(waiting)
		clear(streamed)
		h.scratch.waiting, h.scratch.streamed = waiting, streamed
	}()
	for i, f := range feeds {
		c := claims[i]
		if !c.want {
			continue
		}
		if c.watchersAt.IsZero() || now.Sub(c.watchersAt) >= watchersFresh {
			claims[i].watchers, claims[i].watchersAt = h.watchers(f), now
		}
		r := h.rankOf(f, c, now, c.granted, claims[i].watchers)
		if c.granted {
			streamed = append(streamed, r)
		} else {
			waiting = append(waiting, r)
		}
	}
	// A pass hands out the few free slots and takes the few streams the
	// best waiting lots displace: heaps give those in order without
	// sorting thousands of lots four times a second.
	best := rankHeap{r: waiting, first: func(a, b streamRank) bool { return better(a, b) < 0 }}
	worst := rankHeap{r: streamed, first: func(a, b streamRank) bool { return better(b, a) < 0 }}
	best.init()
	worst.init()

	h.mu.Lock()
	defer h.mu.Unlock()
	for i, f := range feeds {
		f.slot.watchers, f.slot.watchersAt = claims[i].watchers, claims[i].watchersAt
	}
	used, freeing := 0, 0 // slots in use; of them, those already told to close
	for _, f := range h.feeds {
		if f.slot.granted && !f.slot.want {
			f.slot.granted = false
		}
		if f.slot.granted || f.slot.holding {
			used++
		}
		if !f.slot.granted && f.slot.holding {
			freeing++
		}
	}
	for best.len() > 0 {
		c := best.pop()
		f := c.f
		if h.feeds[f.id] != f || !f.slot.want || f.slot.granted {
			continue
		}
		if used < h.cfg.MaxStreams {
			f.slot.granted = true
			used++
			pokes = append(pokes, f)
			continue
		}
		if freeing > 0 {
			freeing-- // a stream closing already frees a slot for this lot
			continue
		}
		// Only a slot that brings the streams under the cap is worth
		// taking: after max_streams was lowered the excess goes as lots
		// leave, never by force.
		if used > h.cfg.MaxStreams {
			break
		}
		for worst.len() > 0 && (!worst.top().f.slot.granted || h.feeds[worst.top().f.id] != worst.top().f) {
			worst.pop()
		}
		if worst.len() == 0 || !displaces(c, worst.top()) {
			break
		}
		v := worst.pop().f
		v.slot.granted = false
		pokes = append(pokes, v)
		v.log.Debug("stream handed to a lot that needs it more; polling", zap.Int64("to_product_id", f.id))
	}
	return pokes
}

// watchers is how many users watch f's lot: Deps.Watchers, or else its
// subscribers.
func (h *Hub) watchers(f *feed) int {
	if h.watching != nil {
		return h.watching(f.id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// rankHeap is a binary heap of ranks, the one first says at the top.
type rankHeap struct {
	r     []streamRank
	first func(a, b streamRank) bool
}

func (q *rankHeap) init() {
	for i := len(q.r)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}

func (q *rankHeap) len() int        { return len(q.r) }
func (q *rankHeap) top() streamRank { return q.r[0] }

func (q *rankHeap) pop() streamRank {
	top, n := q.r[0], len(q.r)-1
	q.r[0] = q.r[n]
	q.r = q.r[:n]
	q.down(0)
	return top
}

func (q *rankHeap) down(i int) {
	for n := len(q.r); ; {
		m := 2*i + 1
		if m >= n {
			return
		}
		if r := m + 1; r < n && q.first(q.r[r], q.r[m]) {
			m = r
		}
		if !q.first(q.r[m], q.r[i]) {
			return
		}
		q.r[i], q.r[m] = q.r[m], q.r[i]
		i = m
	}
}
