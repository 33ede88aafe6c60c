package sseupstream

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// benchmarkRead measures the read path (activity reader, library framing,
// parsing, classification, observer call) over an in-memory stream of
// count copies of event.
func benchmarkRead(b *testing.B, event string) {
	const count = 1000
	stream := []byte(strings.Repeat(event, count))
	cfg := Config{Endpoint: "http://127.0.0.1"}.WithDefaults()
	s := &Subscription{productID: testProductID, obs: nopObserver{}, clock: cfg.Clock, cfg: cfg}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.read(bytes.NewReader(stream), cfg); err != io.EOF {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*count)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkReadPings(b *testing.B) { benchmarkRead(b, "data: ping\n\n") }

func BenchmarkReadBids(b *testing.B) {
	benchmarkRead(b, "event: ch_product_bids:58040119\r\n"+
		`data: {"productId":58040119,"currentBid":125.00,"bidCount":15,"lastBidder":"user123","timeRemaining":300,"extendedTime":false}`+"\r\n\r\n")
}
