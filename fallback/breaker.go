package fallback

import (
	"errors"
	"fmt"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

// BreakerState is the state of a product's stream circuit breaker.
type BreakerState int

// The breaker states. Closed trusts the stream; Open polls instead of
// streaming; HalfOpen lets one probe stream try again.
const (
	BreakerClosed BreakerState = iota
	BreakerOpen
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("BreakerState(%d)", int(s))
}

// Why a breaker changed state.
const (
	ReasonFailures    = "failures"     // N consecutive stream failures
	ReasonUnhealthy   = "unhealthy"    // no healthy stream for too long
	ReasonCoolDown    = "cool_down"    // the cool-down ended: probe again
	ReasonHealthy     = "healthy"      // the probe stream became healthy
	ReasonProbeFailed = "probe_failed" // the probe stream failed or timed out
)

// BreakerConfig tunes a Breaker. Zero fields take the defaults. A field
// with a JSON name is a setting of the Caddy app's `nellis` block by that
// name; the others are fixed by the code that makes the breaker.
type BreakerConfig struct {
	// Consecutive stream failures that open a product's breaker.
	// Default: 3.
	Failures int `json:"breaker_failures,omitempty"`
	// Time without a healthy stream that opens the breaker. Default: 20s.
	OpenAfter settings.Duration `json:"breaker_open_after,omitempty"`
	// Cool-down before an open breaker probes SSE again (jittered).
	// Default: 10s.
	CoolDown settings.Duration `json:"breaker_cooldown,omitempty"`
	// Longest cool-down after repeated failed probes. Default: 2m.
	MaxCoolDown time.Duration `json:"-"`
	// Fraction of the cool-down added or taken at random. Default: 0.2.
	Jitter float64 `json:"-"`
	// How long a probe may take to become healthy. Default: 10s.
	ProbeTimeout time.Duration `json:"-"`
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c BreakerConfig) WithDefaults() BreakerConfig {
	if c.Failures == 0 {
		c.Failures = 3
	}
	if c.OpenAfter == 0 {
		c.OpenAfter = settings.Duration(20 * time.Second)
	}
	if c.CoolDown == 0 {
		c.CoolDown = settings.Duration(10 * time.Second)
	}
	if c.MaxCoolDown == 0 {
		c.MaxCoolDown = 2 * time.Minute
	}
	if c.Jitter == 0 {
		c.Jitter = 0.2
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 10 * time.Second
	}
	return c
}

// Validate reports every nonsensical setting.
func (c BreakerConfig) Validate() error {
	var errs []error
	if c.Failures < 1 {
		errs = append(errs, fmt.Errorf("breaker failures must be at least 1, got %d", c.Failures))
	}
	if c.OpenAfter <= 0 || c.CoolDown <= 0 || c.ProbeTimeout <= 0 {
		errs = append(errs, errors.New("breaker unhealthy, cool_down and probe_timeout must be positive"))
	}
	if c.MaxCoolDown < time.Duration(c.CoolDown) {
		errs = append(errs, fmt.Errorf("breaker max_cool_down %v is shorter than cool_down %v", c.MaxCoolDown, c.CoolDown))
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("breaker jitter must be in [0, 1), got %v", c.Jitter))
	}
	return errors.Join(errs...)
}

// Transition is one change of a breaker's state.
type Transition struct {
	From, To BreakerState
	Reason   string
	At       time.Time
	// Failures is the count of consecutive failures at the transition.
	Failures int
	// ProbeAt is when the next probe is allowed, for transitions to Open.
	ProbeAt time.Time
}

// Breaker is a pure state machine: it never reads a clock or starts a
// goroutine; its owner reports stream outcomes and the time, calls Tick at
// Deadline, and acts on State. It is not safe for concurrent use.
type Breaker struct {
	cfg      BreakerConfig
	rand     func() float64
	onChange func(Transition)

	state          BreakerState
	failures       int
	healthy        bool
	unhealthySince time.Time
	coolDown       time.Duration // the un-jittered cool-down of the next opening
	probeAt        time.Time     // Open: when to go half-open
	probeStart     time.Time     // HalfOpen: when the probe began
}

// NewBreaker returns a closed breaker whose stream is not healthy yet as of
// now. rand returns a float in [0, 1) for the jitter (nil: no jitter), and
// onChange, when not nil, is called on every transition.
func NewBreaker(cfg BreakerConfig, now time.Time, rand func() float64, onChange func(Transition)) *Breaker {
	cfg = cfg.WithDefaults()
	return &Breaker{cfg: cfg, rand: rand, onChange: onChange, unhealthySince: now, coolDown: time.Duration(cfg.CoolDown)}
}

// SetConfig applies new tuning; the current state and counters stay.
func (b *Breaker) SetConfig(cfg BreakerConfig) {
	b.cfg = cfg.WithDefaults()
	b.coolDown = min(max(b.coolDown, time.Duration(b.cfg.CoolDown)), b.cfg.MaxCoolDown)
}

// State returns the current state.
func (b *Breaker) State() BreakerState { return b.state }

// AllowStream reports whether a stream should be open now: always when
// closed, for the probe when half-open, never when open.
func (b *Breaker) AllowStream() bool { return b.state != BreakerOpen }

// Healthy records that the stream is healthy (connected and sending).
func (b *Breaker) Healthy(now time.Time) {
	b.failures = 0
	b.healthy = true
	if b.state == BreakerHalfOpen {
		b.coolDown = time.Duration(b.cfg.CoolDown)
		b.transition(BreakerClosed, ReasonHealthy, now)
	}
}

// Failed records one stream failure: an end of stream, a stall, an error
// status or a failed dial.
func (b *Breaker) Failed(now time.Time) {
	if b.healthy {
		b.unhealthySince = now
	}
	b.healthy = false
	b.failures++
	switch b.state {
	case BreakerClosed:
		if b.failures >= b.cfg.Failures {
			b.open(ReasonFailures, now)
		}
	case BreakerHalfOpen:
		b.coolDown = min(2*b.coolDown, b.cfg.MaxCoolDown)
		b.open(ReasonProbeFailed, now)
	}
}

// Tick applies what time alone decides: opening after too long unhealthy,
// probing after the cool-down, giving up on a slow probe.
func (b *Breaker) Tick(now time.Time) {
	switch b.state {
	case BreakerClosed:
		if !b.healthy && !now.Before(b.unhealthySince.Add(time.Duration(b.cfg.OpenAfter))) {
			b.open(ReasonUnhealthy, now)
		}
	case BreakerOpen:
		if !now.Before(b.probeAt) {
			b.probeStart = now
			b.transition(BreakerHalfOpen, ReasonCoolDown, now)
		}
	case BreakerHalfOpen:
		if !now.Before(b.probeStart.Add(b.cfg.ProbeTimeout)) {
			b.coolDown = min(2*b.coolDown, b.cfg.MaxCoolDown)
			b.open(ReasonProbeFailed, now)
		}
	}
}

// Deadline returns when Tick may next change the state (zero: only a
// reported outcome can).
func (b *Breaker) Deadline() time.Time {
	switch b.state {
	case BreakerClosed:
		if !b.healthy {
			return b.unhealthySince.Add(time.Duration(b.cfg.OpenAfter))
		}
	case BreakerOpen:
		return b.probeAt
	case BreakerHalfOpen:
		return b.probeStart.Add(b.cfg.ProbeTimeout)
	}
	return time.Time{}
}

// ProbeAt returns when an open breaker allows its next probe.
func (b *Breaker) ProbeAt() time.Time { return b.probeAt }

func (b *Breaker) open(reason string, now time.Time) {
	b.healthy = false
	b.probeAt = now.Add(jitter(b.coolDown, b.cfg.Jitter, b.rand))
	b.transition(BreakerOpen, reason, now)
	// A probe gets its own "unhealthy since" once it closes the breaker.
	b.unhealthySince = now
}

func (b *Breaker) transition(to BreakerState, reason string, now time.Time) {
	from := b.state
	b.state = to
	if to == BreakerClosed {
		b.failures = 0
	}
	if b.onChange != nil {
		t := Transition{From: from, To: to, Reason: reason, At: now, Failures: b.failures}
		if to == BreakerOpen {
			t.ProbeAt = b.probeAt
		}
		b.onChange(t)
	}
}

// jitter spreads d by ±frac using rand (nil: no spread).
func jitter(d time.Duration, frac float64, rand func() float64) time.Duration {
	if rand == nil || frac <= 0 || d <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + frac*(2*rand()-1)))
}
