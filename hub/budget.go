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
	Rate            float64 `json:"rate"`
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
		if c.over {
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
	b.Rate = h.limiter.Stats().Rate
	b.Needed = urgent + routine
	if b.Rate > 0 {
		b.FirstSnapshotsIn = float64(b.UnknownLots) / b.Rate
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
	kept := min(routine, b.Rate/fallback.RoutineEvery)
	b.OneOffRate = h.scratch.oneOffs.weigh(now)
	b.ClosingInterval = stretch(time.Duration(p.FallbackClosing), urgent, b.Rate-kept)
	b.Interval = stretch(time.Duration(p.Fallback), routine, b.Rate-min(urgent, b.Rate-kept)-b.OneOffRate)

	h.mu.Lock()
	was := h.budget.Short
	asked := b.Needed + b.OneOffRate
	b.Short = asked > b.Rate || (was && asked > b.Rate*budgetSlack)
	h.budget = b
	h.mu.Unlock()
	switch {
	case b.Short && !was:
		h.log.Warn("poll budget short: polled lots are refreshed less often than poll_interval",
			zap.Int("polled_lots", b.PolledLots), zap.Int("closing_polled_lots", b.ClosingPolledLots),
			zap.Float64("poll_rate", b.Rate), zap.Float64("needed_rate", b.Needed), zap.Float64("one_off_rate", b.OneOffRate),
			zap.Duration("poll_interval", time.Duration(p.Fallback)), zap.Float64("achievable_interval_s", b.Interval),
			zap.Float64("achievable_closing_interval_s", b.ClosingInterval), zap.Int("unknown_lots", b.UnknownLots))
	case !b.Short && was:
		h.log.Info("poll budget covers every polled lot again",
			zap.Int("polled_lots", b.PolledLots), zap.Float64("poll_rate", b.Rate), zap.Float64("needed_rate", b.Needed))
	}
}

// oneOffRate measures the one-off fetches (first snapshots, gap healing)
// the feeds start: they take from the rate what the polled lots' turns
// cannot have.
type oneOffRate struct {
	started atomic.Int64 // by the feeds
	// The rebalancer's: the count at the last mark, and the rate since.
	markAt    time.Time
	markCount int64
	perSec    float64
}

// oneOffWindow is how long the one-off fetches are counted for a rate.
const oneOffWindow = 10 * time.Second

// weigh returns the rate of one-off fetches over the last window that
// ended; the rebalancer calls it every pass.
func (r *oneOffRate) weigh(now time.Time) float64 {
	n := r.started.Load()
	switch elapsed := now.Sub(r.markAt); {
	case r.markAt.IsZero():
		r.markAt, r.markCount = now, n
	case elapsed >= oneOffWindow:
		r.perSec = float64(n-r.markCount) / elapsed.Seconds()
		r.markAt, r.markCount = now, n
	}
	return r.perSec
}

// PollBudget returns the poll budget as last weighed (every quarter second
// while any feed runs).
func (h *Hub) PollBudget() PollBudget {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.budget
}
