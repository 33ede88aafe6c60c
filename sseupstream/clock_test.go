package sseupstream

import (
	"testing"
	"time"

	"github.com/nellis-edge/gateway/clock/clocktest"
)

// fakeClock is the shared fake clock: time moves only in Advance, which
// fires the timers that fall due. Subscriptions see hours pass in
// microseconds.
type fakeClock struct{ *clocktest.Clock }

func newFakeClock() *fakeClock {
	return &fakeClock{clocktest.NewClock(time.Date(2026, 6, 29, 17, 0, 0, 0, time.UTC))}
}

// WaitForTimers blocks until at least n timers are pending.
func (c *fakeClock) WaitForTimers(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		changed := c.TimerArmed()
		count := c.Pending()
		if count >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %d pending timers, have %d", n, count)
		}
	}
}
