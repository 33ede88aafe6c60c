// Package clock is the one time source of the packages that run timers:
// the feeds, the breaker, the limiter, the SSE subscriptions and the
// bidding engine. Tests hand them the fake in package clocktest and drive
// hours of behaviour in microseconds.
package clock

import "time"

// Clock tells time and makes timers. Timers are set for an absolute instant
// rather than a duration, so a timer armed a little late still fires when
// it should: this is what makes a fake clock race-free in tests. A caller
// with a duration d asks for NewTimer(c.Now().Add(d)).
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once at `at`, or at once when `at`
	// has passed.
	NewTimer(at time.Time) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// System is the wall clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer that fires at `at`.
func (System) NewTimer(at time.Time) Timer {
	return systemTimer{time.NewTimer(time.Until(at))}
}

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

var _ Clock = System{}
