package bidding

import (
	"sync"
	"time"
)

// ServerClock estimates the offset between the gateway's clock and
// Nellis's (Nellis minus local). Each observation bounds the offset to an
// interval; the estimate is the intersection of the recent intervals,
// newest first, so that it narrows as observations arrive at different
// sub-second phases, and a step of either clock (an older interval that no
// longer intersects) drops the stale ones. It is safe for concurrent use.
type ServerClock struct {
	mu      sync.Mutex
	samples []offsetSample // oldest first
}

type offsetSample struct {
	lo, hi time.Duration
	at     time.Time // local time of the observation
}

// Limits of the estimator.
const (
	maxOffsetSamples = 16
	// maxOffsetAge drops observations old enough for either clock to have
	// drifted noticeably.
	maxOffsetAge = 15 * time.Minute
	// dateResolution is the Date header's: whole seconds, truncated.
	dateResolution = time.Second
)

// Offset is the estimate: Nellis's clock minus the local clock lies in
// [Lo, Hi]. Without any observation Known is false and both are zero.
type Offset struct {
	Lo, Hi time.Duration
	Known  bool
}

// Mid is the middle of the interval, the best single guess.
func (o Offset) Mid() time.Duration { return o.Lo + (o.Hi-o.Lo)/2 }

// Width is the interval's width, the estimate's uncertainty.
func (o Offset) Width() time.Duration { return o.Hi - o.Lo }

// ObserveDate records an HTTP Date header of an answer to a request sent
// at sent and answered at received (local clock).
func (c *ServerClock) ObserveDate(date, sent, received time.Time) {
	if date.IsZero() || sent.IsZero() || received.Before(sent) {
		return
	}
	// Nellis stamped the answer at some instant in [date, date+1s) while
	// the exchange ran, between sent and received.
	c.add(offsetSample{lo: date.Sub(received), hi: date.Add(dateResolution).Sub(sent), at: received})
}

// ObserveInstant records an exact Nellis instant known to fall between sent
// and received, such as a soft-close extension's projectNewCloseTime minus
// the extension interval.
func (c *ServerClock) ObserveInstant(server, sent, received time.Time) {
	if server.IsZero() || sent.IsZero() || received.Before(sent) {
		return
	}
	c.add(offsetSample{lo: server.Sub(received), hi: server.Sub(sent), at: received})
}

func (c *ServerClock) add(s offsetSample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.samples) == maxOffsetSamples {
		copy(c.samples, c.samples[1:])
		c.samples = c.samples[:maxOffsetSamples-1]
	}
	c.samples = append(c.samples, s)
}

// Offset is the estimate at local time now.
func (c *ServerClock) Offset(now time.Time) Offset {
	c.mu.Lock()
	defer c.mu.Unlock()
	var o Offset
	for i := len(c.samples) - 1; i >= 0; i-- {
		s := c.samples[i]
		if now.Sub(s.at) > maxOffsetAge {
			break
		}
		if !o.Known {
			o = Offset{Lo: s.lo, Hi: s.hi, Known: true}
			continue
		}
		lo, hi := max(o.Lo, s.lo), min(o.Hi, s.hi)
		if lo > hi {
			break // older than a clock step: the newer samples stand
		}
		o.Lo, o.Hi = lo, hi
	}
	return o
}

// Now is the estimate of Nellis's clock at local time now: the middle of
// its interval, or now itself before any observation.
func (c *ServerClock) Now(now time.Time) time.Time {
	return now.Add(c.Offset(now).Mid())
}
