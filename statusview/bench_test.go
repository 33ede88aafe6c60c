package statusview

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/metrics"
	"github.com/nellis-edge/gateway/wsrelay"
)

// manyFeeds is a gateway at its default max_streams: 1000 feeds.
func manyFeeds() []hub.FeedStatus {
	out := make([]hub.FeedStatus, 1000)
	for i := range out {
		out[i] = hub.FeedStatus{ProductID: 58_000_000 + int64(i), Source: "sse", Breaker: "closed",
			SessionID:     "89c6f76e-edcc-47c5-b904-61582cc0eb5e,0xc00439cfa0-0xc00439d010",
			SinceLastByte: 0.4, SinceLastEvent: 0.4, Subscribers: 2, Epoch: "18fe615f0783bc01", Seq: 120,
			NextPoll: at.Add(12 * time.Second)}
	}
	return out
}

// BenchmarkReportJSON is the admin API's work per GET /nellis/feeds,
// past reading the hub.
func BenchmarkReportJSON(b *testing.B) {
	feeds := manyFeeds()
	m := metrics.New()
	var size int
	for b.Loop() {
		r := NewReport(at, feeds, &wsrelay.Stats{}, Latency{Delivery: m.DeliveryLatency(), Processing: m.RecentProcessing()})
		body, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		size = len(body)
	}
	b.ReportMetric(float64(size), "bytes/report")
}

// BenchmarkRender is the live view's work per frame.
func BenchmarkRender(b *testing.B) {
	r := NewReport(at, manyFeeds(), &wsrelay.Stats{}, Latency{})
	for b.Loop() {
		_ = Render(Frame{Address: "localhost:2019", Report: r, Prev: &r})
	}
}
