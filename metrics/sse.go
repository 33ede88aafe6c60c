package metrics

import (
	"encoding/json"
	"math"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// processingHelp is the predecessor's help text for processing_time.
const processingHelp = "Time to process SSE events in milliseconds"

// SSEReport is the predecessor's /metrics/sse JSON (docs/protocol.md, The /metrics/sse JSON), with
// the totals it always left at zero filled in.
type SSEReport struct {
	Connections SSEConnections `json:"connections"`
	Events      SSEEvents      `json:"events"`
	Reliability SSEReliability `json:"reliability"`
}

// SSEConnections describes upstream stream connection attempts.
type SSEConnections struct {
	Total      int64 `json:"total"`      // attempts
	Successful int64 `json:"successful"` // answered with an event stream
	Failed     int64 `json:"failed"`     // dial and status failures
	Active     int64 `json:"active"`     // streams up now; 0 without a status source
	// SuccessRate is Successful/Total in percent, to two decimals; 0 before
	// the first attempt.
	SuccessRate float64 `json:"success_rate"`
}

// SSEEvents describes upstream events and their processing.
type SSEEvents struct {
	// Total is every upstream event, pings included: the sum of ByType.
	Total int64 `json:"total"`
	// ByType counts events by "event_type=<type>", where type is
	// bid_update, auction_closed, ping, connected or other. Types not seen
	// yet are absent, as they were in the predecessor.
	ByType         map[string]int64  `json:"by_type"`
	ProcessingTime SSEProcessingTime `json:"processing_time"`
}

// SSEProcessingTime is the time, in milliseconds, from the arrival of a
// change's upstream bytes to its publication to subscribers, for every
// source. Count, Sum, Avg, Min and Max cover the process's life; the
// percentiles cover the SampleCount most recent changes, at most 4096.
type SSEProcessingTime struct {
	Count       uint64  `json:"count"`
	Sum         float64 `json:"sum"`
	Avg         float64 `json:"avg"`
	Min         float64 `json:"min"`
	Max         float64 `json:"max"`
	P50         float64 `json:"p50"`
	P95         float64 `json:"p95"`
	P99         float64 `json:"p99"`
	Help        string  `json:"help"`
	SampleCount int     `json:"sample_count"`
}

// SSEReliability counts what went wrong upstream.
type SSEReliability struct {
	// ReconnectionAttempts is every reconnection scheduled after a stream
	// ended or failed to open.
	ReconnectionAttempts int64 `json:"reconnection_attempts"`
	FallbackActivations  int64 `json:"fallback_activations"`
	// ErrorCount is stream failures of every reason, events dropped as
	// undecodable and snapshot fetches that failed (cancellations aside).
	ErrorCount int64 `json:"error_count"`
}

// SSE returns the /metrics/sse report as of now, read from the same
// collectors Prometheus scrapes.
func (m *Metrics) SSE() SSEReport {
	var r SSEReport

	c := &r.Connections
	c.Total = count(m.streamAttempts)
	c.Successful = count(m.streamSuccesses)
	c.Failed = c.Total - c.Successful
	if s, ok := m.status.snapshot(); ok {
		c.Active = int64(s.OpenStreams)
	}
	if c.Total > 0 {
		c.SuccessRate = round(100*float64(c.Successful)/float64(c.Total), 2)
	}

	e := &r.Events
	e.ByType = make(map[string]int64, len(eventKinds))
	for _, k := range eventKinds {
		if n := count(m.streamEvents.WithLabelValues(k.String())); n > 0 {
			e.ByType["event_type="+legacyEventTypes[k]] = n
			e.Total += n
		}
	}
	s := m.processing.summary()
	e.ProcessingTime = SSEProcessingTime{
		Count:       s.Count,
		Sum:         round(s.Sum, 3),
		Min:         round(s.Min, 3),
		Max:         round(s.Max, 3),
		P50:         round(s.P50, 3),
		P95:         round(s.P95, 3),
		P99:         round(s.P99, 3),
		Help:        processingHelp,
		SampleCount: s.Held,
	}
	if s.Count > 0 {
		e.ProcessingTime.Avg = round(s.Sum/float64(s.Count), 3)
	}

	rel := &r.Reliability
	rel.ReconnectionAttempts = count(m.reconnects)
	rel.FallbackActivations = count(m.fallbackActivations)
	rel.ErrorCount = count(m.decodeErrors)
	for _, reason := range streamReasons {
		rel.ErrorCount += count(m.streamFailures.WithLabelValues(reason))
	}
	for _, result := range pollResults {
		if result != "ok" && result != "canceled" {
			rel.ErrorCount += count(m.polls.WithLabelValues(result))
		}
	}
	return r
}

// ServeSSE writes the /metrics/sse report as JSON. It answers GET and HEAD
// only, and asks caches not to keep the answer.
func (m *Metrics) ServeSSE(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := json.Marshal(m.SSE())
	if err != nil { // only a bug can make plain numbers and strings fail
		http.Error(w, "encode metrics", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(append(body, '\n'))
}

// count reads a counter's value as a whole number.
func count(c prometheus.Metric) int64 {
	var out dto.Metric
	if err := c.Write(&out); err != nil || out.Counter == nil {
		return 0
	}
	return int64(out.Counter.GetValue())
}

func round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}
