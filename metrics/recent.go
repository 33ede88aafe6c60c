package metrics

import (
	dto "github.com/prometheus/client_model/go"
)

// Histogram is a reading of a latency histogram in seconds, cumulative
// since the process started, in a shape that encodes to JSON (no +Inf).
// Two readings taken a moment apart give the latency of that moment:
// Since subtracts them, as rate() does in PromQL.
type Histogram struct {
	Count      uint64  `json:"count"`
	SumSeconds float64 `json:"sum_s"`
	// Buckets are the finite upper bounds with their cumulative counts,
	// ascending; observations above the last bound count only in Count.
	Buckets []Bucket `json:"buckets"`
}

// Bucket is one histogram bucket.
type Bucket struct {
	UpperBound float64 `json:"le"`
	Count      uint64  `json:"count"`
}

// DeliveryLatency reads the delivery latency histogram (upstream receive
// to socket write, every write since the process started).
func (m *Metrics) DeliveryLatency() Histogram {
	var out dto.Metric
	if err := m.deliveryLatency.Write(&out); err != nil || out.Histogram == nil {
		return Histogram{} // a histogram never fails to write
	}
	h := out.Histogram
	r := Histogram{Count: h.GetSampleCount(), SumSeconds: h.GetSampleSum()}
	for _, b := range h.GetBucket() {
		r.Buckets = append(r.Buckets, Bucket{UpperBound: b.GetUpperBound(), Count: b.GetCumulativeCount()})
	}
	return r
}

// Since returns the observations made between prev and h. When prev is
// not an earlier reading of the same histogram (its count is higher, as
// after a restart, or its buckets differ), it returns h.
func (h Histogram) Since(prev Histogram) Histogram {
	if prev.Count > h.Count || len(prev.Buckets) != len(h.Buckets) {
		return h
	}
	d := Histogram{Count: h.Count - prev.Count, SumSeconds: h.SumSeconds - prev.SumSeconds}
	d.Buckets = make([]Bucket, len(h.Buckets))
	for i, b := range h.Buckets {
		p := prev.Buckets[i]
		if p.UpperBound != b.UpperBound || p.Count > b.Count {
			return h
		}
		d.Buckets[i] = Bucket{UpperBound: b.UpperBound, Count: b.Count - p.Count}
	}
	return d
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) in seconds as PromQL's
// histogram_quantile does: linear interpolation inside the bucket the rank
// falls in, and the highest finite bound when it falls above them all. It
// reports false for a histogram without observations.
func (h Histogram) Quantile(q float64) (float64, bool) {
	if h.Count == 0 || len(h.Buckets) == 0 || q < 0 || q > 1 {
		return 0, false
	}
	rank := q * float64(h.Count)
	lower, below := 0.0, uint64(0)
	for _, b := range h.Buckets {
		if float64(b.Count) >= rank && b.Count > below {
			return lower + (b.UpperBound-lower)*(rank-float64(below))/float64(b.Count-below), true
		}
		lower, below = b.UpperBound, b.Count
	}
	return h.Buckets[len(h.Buckets)-1].UpperBound, true
}

// Recent is a latency's percentiles, in seconds, over its most recent
// observations.
type Recent struct {
	// Samples is how many observations the percentiles cover, at most 4096.
	Samples int     `json:"samples"`
	P50     float64 `json:"p50_s"`
	P99     float64 `json:"p99_s"`
}

// RecentProcessing reports the processing time (upstream receive to
// publication to subscribers) of the most recent changes.
func (m *Metrics) RecentProcessing() Recent {
	s := m.processing.summary()
	const ms = 1e-3
	return Recent{Samples: s.Held, P50: s.P50 * ms, P99: s.P99 * ms}
}
