package metrics

import (
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/sseupstream"
)

// The hooks run on the hub's and the relay's hot paths, once per event and
// once per frame written.

func BenchmarkMessageOut(b *testing.B) {
	r := New().RelayHooks()
	for b.Loop() {
		r.MessageOut("auctionState")
	}
}

func BenchmarkDeliveryLatency(b *testing.B) {
	r := New().RelayHooks()
	for b.Loop() {
		r.DeliveryLatency(300 * time.Microsecond)
	}
}

func BenchmarkStreamEvent(b *testing.B) {
	h := New().HubHooks()
	for b.Loop() {
		h.StreamEvent(1, sseupstream.Ping)
	}
}

func BenchmarkPublished(b *testing.B) {
	h := New().HubHooks()
	c := &hub.Change{Source: hub.SourceSSE, ReceivedAt: time.Now()}
	for b.Loop() {
		h.Published(c)
	}
}

func BenchmarkSSEReport(b *testing.B) {
	m := New()
	h := m.HubHooks()
	c := &hub.Change{Source: hub.SourceSSE, ReceivedAt: time.Now()}
	for range recentSamples {
		h.Published(c)
	}
	for b.Loop() {
		_ = m.SSE()
	}
}
