package wsrelay

import "time"

// bucket is a token bucket for one socket's messages. It is touched only by
// the socket's reader and takes its rate from the current config on every
// call, so a reload applies at once. At 16 bytes it is a fifth of a
// rate.Limiter, which matters once per idle socket.
type bucket struct {
	tokens float64
	last   int64 // unix ns of the last call; 0 before the first
}

// allow takes a token if one is left, refilling perSecond tokens a second
// up to burst.
func (b *bucket) allow(now time.Time, perSecond float64, burst int) bool {
	t := now.UnixNano()
	if b.last == 0 {
		b.tokens = float64(burst)
	} else if elapsed := t - b.last; elapsed > 0 {
		b.tokens = min(float64(burst), b.tokens+float64(elapsed)/float64(time.Second)*perSecond)
	}
	b.last = t
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// has reports whether a token is left at now, taking none.
func (b *bucket) has(now time.Time, perSecond float64, burst int) bool {
	if b.last == 0 {
		return burst >= 1
	}
	return b.tokens+float64(now.UnixNano()-b.last)/float64(time.Second)*perSecond >= 1
}

// full reports whether the bucket would be full at now, so that whoever
// keeps buckets per address can forget it.
func (b *bucket) full(now time.Time, perSecond float64, burst int) bool {
	if b.last == 0 {
		return true
	}
	return b.tokens+float64(now.UnixNano()-b.last)/float64(time.Second)*perSecond >= float64(burst)
}
