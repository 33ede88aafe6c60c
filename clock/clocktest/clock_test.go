package clocktest

import (
	"testing"
	"time"
)

func fired(t *testing.T, c <-chan time.Time) bool {
	t.Helper()
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestClockFiresTimersAtTheirInstant(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(t0)
	late := c.NewTimer(t0.Add(2 * time.Second))
	early := c.NewTimer(t0.Add(time.Second))
	stopped := c.NewTimer(t0.Add(time.Second))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop reports wrongly")
	}
	if at, ok := c.NextDeadline(); !ok || !at.Equal(t0.Add(time.Second)) || c.Pending() != 2 {
		t.Fatalf("next deadline %v %v, pending %d", at, ok, c.Pending())
	}
	c.Advance(999 * time.Millisecond)
	if fired(t, early.C()) || fired(t, late.C()) {
		t.Fatal("fired early")
	}
	c.Advance(time.Millisecond)
	if !fired(t, early.C()) || fired(t, late.C()) || fired(t, stopped.C()) {
		t.Fatal("wrong timers fired at 1s")
	}
	c.Set(t0) // never backwards
	if !c.Now().Equal(t0.Add(time.Second)) {
		t.Fatalf("clock went back to %v", c.Now())
	}
	if !fired(t, c.NewTimer(t0).C()) {
		t.Fatal("a timer for a passed instant did not fire at once")
	}
	armed := c.TimerArmed()
	c.NewTimer(t0.Add(time.Hour))
	select {
	case <-armed:
	default:
		t.Fatal("TimerArmed not signalled")
	}
}
