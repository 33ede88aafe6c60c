package sseupstream

import "time"

// backoffCeiling is the upper bound of the delay before retry number
// failures+1: min(max, base*2^failures), computed without overflow.
func backoffCeiling(failures int, base, max time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	ceiling := base
	for i := 0; i < failures && ceiling < max; i++ {
		if ceiling > max/2 {
			return max
		}
		ceiling *= 2
	}
	return min(ceiling, max)
}

// backoffDelay is "full jitter" (AWS architecture blog): a uniform delay in
// [0, ceiling). Spreading retries over the whole window keeps thousands of
// product streams from reconnecting in lockstep after a Nellis outage.
func backoffDelay(failures int, base, max time.Duration, randInt64N func(int64) int64) time.Duration {
	ceiling := backoffCeiling(failures, base, max)
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(randInt64N(int64(ceiling)))
}
