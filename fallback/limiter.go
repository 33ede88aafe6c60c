package fallback

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/nellis-edge/gateway/clock"
)

// Priority orders polls waiting for a free slot.
type Priority int

// The priorities, lowest first. A free slot goes to the highest waiting:
//   - Urgent: a lot in its closing window without a healthy stream (its
//     polls are all its watchers get), or healing a gap there.
//   - First: a lot's first snapshot. Nothing is known of the lot yet, not
//     even when it closes, so it cannot be ranked for a stream.
//   - Routine: the other polled lots, in turn; gap healing.
//   - Insurance: the safety-net and hedging polls of a lot a healthy
//     stream follows. When poll_rate is short they wait for every lot
//     that has only its polls.
//   - Background: products no user monitors (only subscribe sockets or a
//     lingering feed want them), so that watchers who bid never wait for
//     those who only look.
//
// A Request's owner raises it (Request.Raise) when its lot's need grows
// while it waits: the lot entered its closing window, a user started to
// monitor it, its stream failed.
const (
	Background Priority = iota
	Insurance
	Routine
	First
	Urgent

	priorities = 5
)

// maxBackground is how many Background requests may hold a slot at once.
// A slot holder also holds its place for a token, and tokens go in the
// order they were asked for: one background request at a time keeps an
// urgent one from ever waiting for more than one background token.
const maxBackground = 1

// RoutineEvery bounds how long the polled lots' turns wait behind closing
// lots and first snapshots, and first snapshots behind closing lots:
// while a Routine (or First) request waits, at most RoutineEvery-1 slots
// in a row go to higher lines, and the next to it. So each line keeps at
// least a RoutineEvery-th of the rate, every polled lot a bounded
// staleness and every new lot its first state, however much the closing
// lots ask.
const RoutineEvery = 5

// LimiterConfig tunes the process-wide Limiter. Zero fields take the
// defaults. A field with a JSON name is a setting of the Caddy app's
// `nellis` block by that name.
type LimiterConfig struct {
	// Snapshot requests per second toward Nellis, across all products.
	// Default: 10.
	Rate float64 `json:"poll_rate,omitempty"`
	// Requests that may start back to back. Default: 1.
	Burst int `json:"-"`
	// Snapshot requests in flight at once, across all products.
	// Default: 4.
	MaxInFlight int `json:"poll_concurrency,omitempty"`
	// Lowest rate a throttled limiter falls to. Default: 0.5.
	MinRate float64 `json:"-"`
	// Factor the rate is multiplied by on a 429 or 5xx. Default: 0.5.
	Backoff float64 `json:"-"`
	// Quiet time after which a slowed rate steps back up. Default: 10s.
	Recover time.Duration `json:"-"`
	// Longest Retry-After honoured. Default: 2m.
	MaxPause time.Duration `json:"-"`
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c LimiterConfig) WithDefaults() LimiterConfig {
	if c.Rate == 0 {
		c.Rate = 10
	}
	if c.Burst == 0 {
		c.Burst = 1
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 4
	}
	if c.MinRate == 0 {
		c.MinRate = min(0.5, c.Rate)
	}
	if c.Backoff == 0 {
		c.Backoff = 0.5
	}
	if c.Recover == 0 {
		c.Recover = 10 * time.Second
	}
	if c.MaxPause == 0 {
		c.MaxPause = 2 * time.Minute
	}
	return c
}

// Validate reports every nonsensical setting.
func (c LimiterConfig) Validate() error {
	var errs []error
	if c.Rate <= 0 || c.MinRate <= 0 || c.MinRate > c.Rate {
		errs = append(errs, fmt.Errorf("limiter rate %v and min_rate %v must be positive with min_rate <= rate", c.Rate, c.MinRate))
	}
	if c.Burst < 1 || c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("limiter burst %d and max_in_flight %d must be at least 1", c.Burst, c.MaxInFlight))
	}
	if c.Backoff <= 0 || c.Backoff >= 1 {
		errs = append(errs, fmt.Errorf("limiter backoff must be in (0, 1), got %v", c.Backoff))
	}
	if c.Recover <= 0 || c.MaxPause <= 0 {
		errs = append(errs, errors.New("limiter recover and max_pause must be positive"))
	}
	return errors.Join(errs...)
}

// Limiter keeps every snapshot request of the process polite: a token
// bucket, a cap on requests in flight, and a slowdown when Nellis answers
// 429 or 5xx (the rate halves, then recovers step by step; a Retry-After
// pauses everything). It is safe for concurrent use.
type Limiter struct {
	clock clock.Clock

	mu           sync.Mutex
	cfg          LimiterConfig
	bucket       *rate.Limiter
	rate         float64 // the current, possibly slowed, rate
	pausedUntil  time.Time
	lastThrottle time.Time
	lastRecover  time.Time
	inFlight     int
	background   int // of inFlight, the Background requests
	// passedOver counts, for the Routine and First lines, the slots
	// granted in a row to higher lines while one of theirs waited
	// (RoutineEvery).
	passedOver [priorities]int
	queues     [priorities][]*slotWaiter // by Priority
}

type slotWaiter struct {
	ready chan struct{} // closed when the slot is handed over
	// Guarded by Limiter.mu.
	pri        Priority
	queued     bool // in queues[pri]
	granted    bool
	background bool // the slot was granted as a Background one
}

// NewLimiter returns a limiter on clk (nil: the system clock).
func NewLimiter(cfg LimiterConfig, clk clock.Clock) *Limiter {
	if clk == nil {
		clk = clock.System{}
	}
	cfg = cfg.WithDefaults()
	return &Limiter{
		clock:  clk,
		cfg:    cfg,
		rate:   cfg.Rate,
		bucket: rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst),
	}
}

// SetConfig applies new tuning at once; requests in flight are unaffected.
func (l *Limiter) SetConfig(cfg LimiterConfig) {
	cfg = cfg.WithDefaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	l.cfg = cfg
	l.rate = min(max(l.rate, cfg.MinRate), cfg.Rate)
	if l.lastThrottle.IsZero() {
		l.rate = cfg.Rate
	}
	l.bucket.SetLimitAt(now, rate.Limit(l.rate))
	l.bucket.SetBurstAt(now, cfg.Burst)
	l.grantLocked()
}

// LimiterStats is a point-in-time view of a Limiter.
type LimiterStats struct {
	Rate     float64 // requests per second now
	InFlight int
	Waiting  int
	// Urgent and Background count, of Waiting, the requests at those
	// priorities.
	Urgent      int
	Background  int
	PausedUntil time.Time
}

// Stats returns the limiter's current state.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	waiting := 0
	for _, q := range l.queues {
		waiting += len(q)
	}
	return LimiterStats{Rate: l.rate, InFlight: l.inFlight, Waiting: waiting, Urgent: len(l.queues[Urgent]), Background: len(l.queues[Background]), PausedUntil: l.pausedUntil}
}

// Permit is the right to make one request. Call Done exactly once with the
// request's error.
type Permit struct {
	l          *Limiter
	background bool // holds one of the Background slots
	once       sync.Once
}

// Acquire waits for a free slot (highest priority first), any
// Retry-After pause and a token, and returns the permit; or the context's
// error.
func (l *Limiter) Acquire(ctx context.Context, pri Priority) (*Permit, error) {
	return l.NewRequest(pri).Wait(ctx)
}

// Request is one request for a permit whose priority its owner may raise
// while it waits for a slot. Call Wait once.
type Request struct {
	l *Limiter
	w *slotWaiter
}

// NewRequest returns a request at pri; it waits for nothing until Wait.
func (l *Limiter) NewRequest(pri Priority) *Request {
	return &Request{l: l, w: &slotWaiter{ready: make(chan struct{}), pri: validPriority(pri)}}
}

// Raise moves the request up to pri, at the back of pri's line, while it
// waits for a slot (or before Wait). A pri no higher than the request's,
// or a request that has its slot, changes nothing. Safe to call from any
// goroutine.
func (r *Request) Raise(pri Priority) {
	l, w := r.l, r.w
	pri = validPriority(pri)
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted || pri <= w.pri {
		return
	}
	if !w.queued {
		w.pri = pri
		return
	}
	l.queues[w.pri] = slices.DeleteFunc(l.queues[w.pri], func(o *slotWaiter) bool { return o == w })
	w.pri = pri
	l.queues[pri] = append(l.queues[pri], w)
	l.grantLocked() // it may have waited only for the background's slot
}

// Waiting reports whether the request still waits for its slot: what it
// is for has not started, and will not before the slot is handed over.
func (r *Request) Waiting() bool {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return !r.w.granted
}

// Priority is the request's priority now.
func (r *Request) Priority() Priority {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return r.w.pri
}

// Wait waits for a free slot, any Retry-After pause and a token, and
// returns the permit; or the context's error.
func (r *Request) Wait(ctx context.Context) (*Permit, error) {
	l := r.l
	background, err := l.acquireSlot(ctx, r.w)
	if err != nil {
		return nil, err
	}
	for {
		l.mu.Lock()
		now := l.clock.Now()
		var at time.Time
		var res *rate.Reservation
		if now.Before(l.pausedUntil) {
			at = l.pausedUntil
		} else {
			res = l.bucket.ReserveN(now, 1)
			d := res.DelayFrom(now)
			if d <= 0 {
				l.mu.Unlock()
				return &Permit{l: l, background: background}, nil
			}
			at = now.Add(d)
		}
		l.mu.Unlock()

		t := l.clock.NewTimer(at)
		select {
		case <-ctx.Done():
			t.Stop()
			l.mu.Lock()
			if res != nil {
				res.CancelAt(l.clock.Now())
			}
			l.releaseSlotLocked(background)
			l.mu.Unlock()
			return nil, ctx.Err()
		case <-t.C():
		}
		if res != nil {
			return &Permit{l: l, background: background}, nil
		}
	}
}

func validPriority(p Priority) Priority {
	return min(max(p, Background), Urgent)
}

// acquireSlot waits for a slot for w and reports whether it is a
// Background one.
func (l *Limiter) acquireSlot(ctx context.Context, w *slotWaiter) (background bool, err error) {
	l.mu.Lock()
	if pri := w.pri; l.inFlight < l.cfg.MaxInFlight && !l.waitingFromLocked(pri) && (pri > Background || l.background < maxBackground) {
		l.takeSlotLocked(w)
		l.mu.Unlock()
		return w.background, nil
	}
	w.queued = true
	l.queues[w.pri] = append(l.queues[w.pri], w)
	l.mu.Unlock()

	select {
	case <-w.ready:
		l.mu.Lock()
		defer l.mu.Unlock()
		return w.background, nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		if w.granted {
			l.releaseSlotLocked(w.background)
		} else {
			l.queues[w.pri] = slices.DeleteFunc(l.queues[w.pri], func(o *slotWaiter) bool { return o == w })
			w.queued = false
		}
		return false, ctx.Err()
	}
}

// takeSlotLocked gives w a slot.
func (l *Limiter) takeSlotLocked(w *slotWaiter) {
	w.granted, w.queued, w.background = true, false, w.pri == Background
	l.inFlight++
	if w.background {
		l.background++
	}
}

// waitingFromLocked reports whether a request of priority pri or above
// waits for a slot: a new one of pri must queue behind it.
func (l *Limiter) waitingFromLocked(pri Priority) bool {
	for p := pri; p <= Urgent; p++ {
		if len(l.queues[p]) > 0 {
			return true
		}
	}
	return false
}

func (l *Limiter) releaseSlotLocked(background bool) {
	l.inFlight--
	if background {
		l.background--
	}
	l.grantLocked()
}

// grantLocked hands free slots to waiters, highest priority first, but
// every RoutineEvery-th to a waiting First or Routine one passed over.
func (l *Limiter) grantLocked() {
	for l.inFlight < l.cfg.MaxInFlight {
		pri := Urgent
		for ; pri >= Background; pri-- {
			if len(l.queues[pri]) > 0 && (pri > Background || l.background < maxBackground) {
				break
			}
		}
		if pri < Background {
			return
		}
		for p := First; p >= Routine; p-- {
			if p < pri && len(l.queues[p]) > 0 && l.passedOver[p] >= RoutineEvery-1 {
				pri = p // its turn (RoutineEvery)
				break
			}
		}
		for p := Routine; p < pri; p++ {
			if len(l.queues[p]) > 0 {
				l.passedOver[p]++
			}
		}
		l.passedOver[pri] = 0
		w := l.queues[pri][0]
		l.queues[pri] = l.queues[pri][1:]
		l.takeSlotLocked(w)
		close(w.ready)
	}
}

// Done returns the slot and tells the limiter how the request went: a
// throttling answer (429 or 5xx, see Throttled) slows every later request.
func (p *Permit) Done(err error) {
	p.once.Do(func() { p.l.done(err, p.background) })
}

func (l *Limiter) done(err error, background bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseSlotLocked(background)
	now := l.clock.Now()
	if throttled, retryAfter := Throttled(err); throttled {
		l.lastThrottle = now
		l.rate = max(l.cfg.MinRate, l.rate*l.cfg.Backoff)
		l.bucket.SetLimitAt(now, rate.Limit(l.rate))
		if retryAfter > 0 {
			l.pausedUntil = later(l.pausedUntil, now.Add(min(retryAfter, l.cfg.MaxPause)))
		}
		return
	}
	if l.rate < l.cfg.Rate && now.Sub(l.lastThrottle) >= l.cfg.Recover && now.Sub(l.lastRecover) >= l.cfg.Recover {
		l.lastRecover = now
		l.rate = min(l.cfg.Rate, l.rate/l.cfg.Backoff)
		l.bucket.SetLimitAt(now, rate.Limit(l.rate))
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
