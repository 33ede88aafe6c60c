package metrics

import (
	"math"
	"slices"
	"sync"
)

// recentSamples is how many observations the percentiles of the
// /metrics/sse JSON are computed over: a fixed ring of the most recent
// ones, so p99 follows the gateway as it is now, not as it was at start.
const recentSamples = 4096

// samples keeps all-time totals of an observed quantity (count, sum, min,
// max) and a fixed ring of its most recent values for percentiles. It is
// safe for concurrent use; observe takes a mutex briefly and never
// allocates.
type samples struct {
	mu       sync.Mutex
	count    uint64
	sum      float64
	min, max float64
	ring     [recentSamples]float64
	next     int // the ring slot the next value goes into
	held     int // how many ring slots hold a value
}

func (s *samples) observe(v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count == 0 || v < s.min {
		s.min = v
	}
	if s.count == 0 || v > s.max {
		s.max = v
	}
	s.count++
	s.sum += v
	s.ring[s.next] = v
	s.next = (s.next + 1) % len(s.ring)
	if s.held < len(s.ring) {
		s.held++
	}
}

// sampleSummary is a consistent reading of samples.
type sampleSummary struct {
	Count         uint64
	Sum, Min, Max float64
	// P50, P95 and P99 are over the Held most recent values.
	P50, P95, P99 float64
	Held          int
}

func (s *samples) summary() sampleSummary {
	s.mu.Lock()
	sum := sampleSummary{Count: s.count, Sum: s.sum, Min: s.min, Max: s.max, Held: s.held}
	recent := make([]float64, s.held)
	copy(recent, s.ring[:s.held]) // the held values fill the ring from slot 0
	s.mu.Unlock()

	slices.Sort(recent)
	sum.P50 = percentile(recent, 50)
	sum.P95 = percentile(recent, 95)
	sum.P99 = percentile(recent, 99)
	return sum
}

// percentile returns the nearest-rank p-th percentile of sorted: the
// smallest value at least p percent of the values are less than or equal
// to. It is 0 for no values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}
