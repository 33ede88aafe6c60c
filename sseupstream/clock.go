package sseupstream

import (
	"math/rand/v2"
	"time"
)

// Clock is the time source of a subscription: the stall watchdog, the
// backoff sleeps and every timestamp go through it, so tests can drive hours
// of reconnect behaviour in microseconds.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer a subscription uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

func randInt64N(n int64) int64 { return rand.Int64N(n) }
