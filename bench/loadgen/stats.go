package loadgen

import (
	"slices"
	"time"
)

// Summary describes a set of durations, in milliseconds.
type Summary struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Summarize sorts d in place and summarises it. A percentile is the
// smallest sample with at least that share of samples at or below it
// (nearest rank), so p99 of 100 samples is the 99th, never an average.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	rank := func(q float64) float64 {
		i := int(q*float64(len(d))+0.999999999) - 1
		return ms(d[min(max(i, 0), len(d)-1)])
	}
	return Summary{
		N: len(d), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), P999: rank(0.999),
		Max: ms(d[len(d)-1]), Mean: ms(sum / time.Duration(len(d))),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
