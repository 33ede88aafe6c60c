package hub

import (
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/fallback"
)

// PollBudget is what poll_rate covers now: the polls the schedule asks for
// the polled lots (poll_interval, or poll_interval_closing in their closing
// window) against the limiter's rate. The limiter serves closing lots'
// polls first, then lots' first snapshots, then the other polled lots in
// turn (which keep a fifth of the rate while they wait), and only then the
// insurance polls of streamed lots (safety net, hedge), which never make
// the budget short.
type PollBudget struct {
	// At is when it was weighed.
	At time.Time `json:"at"`
	// Short: the rate cannot poll every polled lot at its interval.
	Short bool `json:"short"`
	// Rate is the limiter's rate now, in requests per second (poll_rate,
	// or less while Nellis throttles); Needed is what the polled lots ask,
	// InsuranceNeeded what the streamed lots' own polls ask on top.
	Rate float64 `json:"rate"`
	// Capacity is what the polls get: the rate, or the fetches done a
	// second over the last 10 s if fewer while requests waited throughout
	// (poll_concurrency snapshots in flight carry no more than that many
	// round trips). The intervals are weighed against it.
	Capacity        float64 `json:"capacity"`
	Needed          float64 `json:"needed"`
	InsuranceNeeded float64 `json:"insurance_needed"`
	// PolledLots counts the lots without a healthy stream, not over;
	// ClosingPolledLots those of them in their closing window.
	PolledLots        int `json:"polled_lots"`
	ClosingPolledLots int `json:"closing_polled_lots"`
	// UnknownLots counts the lots whose close time is not known yet (their
	// first snapshot waits): until it comes, none can be ranked for a
	// stream. FirstSnapshotsIn is how long, in seconds, the rate takes to
	// fetch them all.
	UnknownLots      int     `json:"unknown_lots"`
	FirstSnapshotsIn float64 `json:"first_snapshots_in_s"`
	// OneOffRate is how many first snapshots and gap-healing fetches a
	// second the lots asked lately (streams opening and closing heal
	// their gaps): they go before or beside the polled lots' turns.
	OneOffRate float64 `json:"one_off_rate"`
	// Interval and ClosingInterval are how often, in seconds, a polled lot
	// outside and inside its closing window can be polled at this rate:
	// its expected staleness. Never less than the configured intervals;
	// -1 when the rate leaves nothing for them.
	Interval        float64 `json:"interval_s"`
	ClosingInterval float64 `json:"closing_interval_s"`
}

// budgetSlack is how far under the rate the need must fall before a short
// budget is said to be covered again, so that a need hovering at the rate
// does not warn over and over.
const budgetSlack = 0.9

// weighBudget works out the poll budget from the feeds' claims, and logs
// once when it falls short and once when it is covered again.
func (h *Hub) weighBudget(now time.Time, cfg Config, claims []slotClaim) {
	p := cfg.Poll
	window := time.Duration(p.ClosingWindow)
	perSec := func(d time.Duration) float64 { return float64(time.Second) / float64(d) }
	var urgent, routine float64 // requests per second the polled lots ask
	b := PollBudget{At: now}
	for _, c := range claims {
		if c.over || c.reader {
			continue
		}
		closing := !c.closeAt.IsZero() && c.closeAt.Sub(now) <= window
		if c.closeAt.IsZero() {
			b.UnknownLots++
		}
		switch {
		case c.healthy && closing:
			b.InsuranceNeeded += perSec(time.Duration(p.Hedge))
		case c.healthy:
			b.InsuranceNeeded += perSec(time.Duration(p.SafetyNet))
		case closing:
			b.PolledLots++
			b.ClosingPolledLots++
			urgent += perSec(time.Duration(p.FallbackClosing))
		default:
			b.PolledLots++
			routine += perSec(time.Duration(p.Fallback))
		}
	}
	st := h.limiter.Stats()
	fc := &h.scratch.fetches
	fc.weigh(now, st.Waiting > 0)
	b.Rate, b.Capacity, b.OneOffRate = st.Rate, st.Rate, fc.oneOffPerSec
	if fc.saturated && fc.donePerSec > 0 {
		b.Capacity = min(b.Rate, fc.donePerSec)
	}
	b.Needed = urgent + routine
	if b.Capacity > 0 {
		b.FirstSnapshotsIn = float64(b.UnknownLots) / b.Capacity
	}
	// Each group's polls stretch by how far its need exceeds its share.
	stretch := func(d time.Duration, need, rate float64) float64 {
		switch {
		case need <= rate:
			return d.Seconds()
		case rate <= 0:
			return -1
		}
		return d.Seconds() * need / rate
	}
	// The polled lots' turns keep a share of the rate however much the
	// closing lots ask (fallback.RoutineEvery).
	c := b.Capacity
	kept := min(routine, c/fallback.RoutineEvery)
	b.ClosingInterval = stretch(time.Duration(p.FallbackClosing), urgent, c-kept)
	b.Interval = stretch(time.Duration(p.Fallback), routine, c-min(urgent, c-kept)-b.OneOffRate)
	// A lot polled now waits behind the lots that asked before it, as
	// many as there were then: the interval stated is the longest of
	// those weighed within one interval (stated.hold).
	b.Interval = h.scratch.stated.polled.hold(now, b.Interval)
	b.ClosingInterval = h.scratch.stated.closing.hold(now, b.ClosingInterval)

	h.mu.Lock()
	was := h.budget.Short
	asked := b.Needed + b.OneOffRate
	b.Short = asked > b.Capacity || (was && asked > b.Capacity*budgetSlack)
	h.budget = b
	h.mu.Unlock()
	switch {
	case b.Short && !was:
		h.log.Warn("poll budget short: polled lots are refreshed less often than poll_interval",
			zap.Int("polled_lots", b.PolledLots), zap.Int("closing_polled_lots", b.ClosingPolledLots),
			zap.Float64("poll_rate", b.Rate), zap.Float64("needed_rate", b.Needed), zap.Float64("one_off_rate", b.OneOffRate), zap.Float64("capacity", b.Capacity),
			zap.Duration("poll_interval", time.Duration(p.Fallback)), zap.Float64("achievable_interval_s", b.Interval),
			zap.Float64("achievable_closing_interval_s", b.ClosingInterval), zap.Int("unknown_lots", b.UnknownLots))
	case !b.Short && was:
		h.log.Info("poll budget covers every polled lot again",
			zap.Int("polled_lots", b.PolledLots), zap.Float64("poll_rate", b.Rate), zap.Float64("needed_rate", b.Needed))
	}
}

// fetchCounts measures the fetches over windows of fetchWindow: the
// one-off ones the feeds start (first snapshots, gap healing), which take
// from the rate what the polled lots' turns cannot have, and all those
// done, which say what the limiter carries when requests wait throughout
// (poll_concurrency fetches in flight may carry less than poll_rate).
type fetchCounts struct {
	oneOffs, done atomic.Int64 // by the feeds
	// The rebalancer's: the counts at the last mark, whether requests
	// waited at every pass since, and the rates over the last window.
	markAt                   time.Time
	markOneOffs, markDone    int64
	waitedThroughout         bool
	samples                  int // passes since the mark
	oneOffPerSec, donePerSec float64
	saturated                bool // requests waited throughout that window
}

// fetchWindow is how long the fetches are counted for a rate;
// slowdownWindow how long for a lower one (weigh).
const (
	fetchWindow    = 10 * time.Second
	slowdownWindow = 2 * time.Second
)

// weigh updates the rates when a window ends; waiting says whether
// requests wait for the limiter now. The rebalancer calls it every pass.
func (c *fetchCounts) weigh(now time.Time, waiting bool) {
	oneOffs, done := c.oneOffs.Load(), c.done.Load()
	c.waitedThroughout = c.waitedThroughout && waiting
	c.samples++
	// Throughout: seen waiting at least every other pass's time.
	throughout := func(elapsed time.Duration) bool {
		return c.waitedThroughout && c.samples >= int(elapsed/(2*rebalanceEvery))
	}
	switch elapsed := now.Sub(c.markAt); {
	case c.markAt.IsZero():
	case elapsed >= fetchWindow:
		c.oneOffPerSec = float64(oneOffs-c.markOneOffs) / elapsed.Seconds()
		c.donePerSec = float64(done-c.markDone) / elapsed.Seconds()
		c.saturated = throughout(elapsed)
	default:
		// Round trips slowing down (Nellis, or this machine, under load)
		// carry fewer polls at once: a lower rate is taken as soon as a
		// slowdownWindow shows it, not a whole window later, or the
		// interval stated would be short of the truth meanwhile. A
		// higher one waits for the window. One fetch more is granted, so
		// that a low rate's counting in whole fetches is no slowdown.
		if elapsed >= slowdownWindow && throughout(elapsed) {
			if rate := float64(done-c.markDone+1) / elapsed.Seconds(); !c.saturated || rate < c.donePerSec {
				c.donePerSec, c.saturated = rate, true
			}
		}
		return
	}
	c.markAt, c.markOneOffs, c.markDone, c.waitedThroughout, c.samples = now, oneOffs, done, waiting, 0
}

// PollBudget returns the poll budget as last weighed (every quarter second
// while any feed runs).
func (h *Hub) PollBudget() PollBudget {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.budget
}

// statedIntervals are the intervals the budget stated lately, the
// rebalancer's alone.
type statedIntervals struct{ polled, closing intervalHold }

// intervalHold keeps the longest interval weighed within the last such
// interval. The polled lots take their turns in the order they asked: a
// lot's turn comes after every lot that asked before it, so when lots
// leave the polled ones (given a stream as lots close, a dozen a second on
// an auction night) the interval weighed now, for the fewer lots left,
// is shorter than the one the lots already waiting still wait out, and
// stating it would break the promise for each of them.
type intervalHold struct {
	// samples, oldest first, each longer than every later one: the
	// longest within a window is the first one inside it.
	samples []intervalSample
}

type intervalSample struct {
	at time.Time
	s  float64 // seconds; -1 for never
}

// maxHeld bounds how far back an interval is held: a budget that short
// is reported as such, whatever its interval.
const maxHeld = 10 * time.Minute

// hold records interval s weighed at now and returns the longest one
// still being waited out: weighed at most that interval ago. Never (-1:
// one-off fetches took the whole rate) is stated while it is weighed, not
// held: the lots then waiting get their turns once the one-offs are done.
func (h *intervalHold) hold(now time.Time, s float64) float64 {
	longer := func(a, b float64) bool { return a < 0 || (b >= 0 && a > b) } // a longer than b
	for len(h.samples) > 0 && !longer(h.samples[len(h.samples)-1].s, s) {
		h.samples = h.samples[:len(h.samples)-1]
	}
	h.samples = append(h.samples, intervalSample{now, s})
	for len(h.samples) > 1 && now.Sub(h.samples[0].at) > h.samples[0].lasts() {
		h.samples = h.samples[1:]
	}
	return h.samples[0].s
}

// lasts is how long the interval is waited out after it was weighed.
func (s intervalSample) lasts() time.Duration {
	if s.s < 0 {
		return 0
	}
	return min(maxHeld, time.Duration(s.s*float64(time.Second)))
}
