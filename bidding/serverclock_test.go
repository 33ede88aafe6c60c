package bidding

import (
	"testing"
	"time"
)

func TestServerClockNarrowsWithDateHeaders(t *testing.T) {
	var c ServerClock
	local := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if o := c.Offset(local); o.Known || c.Now(local) != local {
		t.Fatalf("without samples: %+v", o)
	}
	// Nellis is 5.4 s ahead. Each answer takes 40 ms; the Date header
	// truncates to the second.
	const offset = 5400 * time.Millisecond
	for i := range 8 {
		sent := local.Add(time.Duration(i) * 1300 * time.Millisecond)
		received := sent.Add(40 * time.Millisecond)
		date := sent.Add(20 * time.Millisecond).Add(offset).Truncate(time.Second)
		c.ObserveDate(date, sent, received)
	}
	now := local.Add(11 * time.Second)
	o := c.Offset(now)
	if !o.Known || o.Lo > offset || o.Hi < offset {
		t.Fatalf("offset %+v does not contain %s", o, offset)
	}
	if o.Width() > 200*time.Millisecond {
		t.Errorf("offset %+v: eight samples at different phases should narrow it below 200ms", o)
	}
	if d := c.Now(now).Sub(now.Add(offset)); d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("Now is %s off", d)
	}
}

func TestServerClockFollowsAClockStep(t *testing.T) {
	var c ServerClock
	local := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c.ObserveInstant(local.Add(2*time.Second), local, local.Add(10*time.Millisecond))
	// Nellis's clock is stepped back by a minute: the old sample no longer
	// intersects and is dropped.
	later := local.Add(time.Minute)
	c.ObserveInstant(later.Add(-58*time.Second), later, later.Add(10*time.Millisecond))
	o := c.Offset(later)
	if o.Lo < -58*time.Second-20*time.Millisecond || o.Hi > -58*time.Second {
		t.Errorf("after the step: %+v, want about -58s", o)
	}
}

func TestServerClockForgetsOldSamples(t *testing.T) {
	var c ServerClock
	local := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c.ObserveDate(local.Add(3*time.Second), local, local)
	if !c.Offset(local).Known {
		t.Fatal("sample not taken")
	}
	if c.Offset(local.Add(maxOffsetAge + time.Second)).Known {
		t.Error("a sample older than maxOffsetAge is still used")
	}
	// Invalid samples are ignored.
	c.ObserveDate(time.Time{}, local, local)
	c.ObserveDate(local, local, local.Add(-time.Second))
	c.ObserveInstant(time.Time{}, local, local)
	if c.Offset(local.Add(maxOffsetAge + time.Second)).Known {
		t.Error("an invalid sample was taken")
	}
}

func TestServerClockKeepsTheNewestSamples(t *testing.T) {
	var c ServerClock
	local := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range maxOffsetSamples + 5 {
		at := local.Add(time.Duration(i) * time.Second)
		c.ObserveInstant(at.Add(time.Second), at, at.Add(time.Millisecond))
	}
	if n := len(c.samples); n != maxOffsetSamples {
		t.Errorf("%d samples kept, want %d", n, maxOffsetSamples)
	}
}
