package metrics

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
)

// The extension's dashboards read /metrics/sse as the predecessor wrote
// it: every key of the sample must be there, and no other.
func TestSSEReportHasTheSampleShape(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("testdata", "samples", "http_get_metrics_sse.shape-from-code.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := New()
	h := m.HubHooks()
	h.StreamEvent(1, sseupstream.Bid) // the sample's by_type holds bid_update and auction_closed
	h.StreamEvent(1, sseupstream.Closed)

	got, err := json.Marshal(m.SSE())
	if err != nil {
		t.Fatal(err)
	}
	want := keyShape(t, sample)
	if have := keyShape(t, got); !slices.Equal(have, want) {
		t.Errorf("report keys differ from the sample\n got: %v\nwant: %v", have, want)
	}
}

func TestSSEReportTotals(t *testing.T) {
	m := New()
	m.SetStatusSource(func() Snapshot { return Snapshot{OpenStreams: 2} })
	h := m.HubHooks()
	h.StreamUp(1)
	h.StreamUp(2)
	h.StreamDown(3, sseupstream.ReasonDial)
	h.StreamUp(3)
	h.StreamDown(3, sseupstream.ReasonStall)
	h.StreamEvent(1, sseupstream.Connected)
	h.StreamEvent(1, sseupstream.Ping)
	h.StreamEvent(1, sseupstream.Ping)
	for range 12 {
		h.StreamEvent(2, sseupstream.Bid)
	}
	h.StreamEvent(2, sseupstream.Closed)
	h.StreamDecodeError(2, "ch_product_bids:2")
	h.FallbackActivated(3)
	h.PollResult(3, hub.SourcePoll, time.Second, &nellis.StatusError{Code: 500})
	h.PollResult(3, hub.SourcePoll, time.Second, nil)
	h.PollResult(3, hub.SourcePoll, time.Second, context.Canceled) // the feed closing, not a fault

	r := m.SSE()
	wantConn := SSEConnections{Total: 4, Successful: 3, Failed: 1, Active: 2, SuccessRate: 75}
	if r.Connections != wantConn {
		t.Errorf("connections = %+v, want %+v", r.Connections, wantConn)
	}
	if r.Events.Total != 16 {
		t.Errorf("events.total = %d, want 16", r.Events.Total)
	}
	wantTypes := map[string]int64{
		"event_type=connected": 1, "event_type=ping": 2,
		"event_type=bid_update": 12, "event_type=auction_closed": 1,
	}
	if !maps.Equal(r.Events.ByType, wantTypes) {
		t.Errorf("events.by_type = %v, want %v", r.Events.ByType, wantTypes)
	}
	// Reconnects: the dial failure and the stall. Errors: those two, the
	// decode error and the 500.
	wantRel := SSEReliability{ReconnectionAttempts: 2, FallbackActivations: 1, ErrorCount: 4}
	if r.Reliability != wantRel {
		t.Errorf("reliability = %+v, want %+v", r.Reliability, wantRel)
	}
}

func TestSSEReportSuccessRateRounds(t *testing.T) {
	m := New()
	h := m.HubHooks()
	h.StreamUp(1)
	h.StreamUp(1)
	h.StreamDown(1, sseupstream.ReasonStatus)
	if got := m.SSE().Connections.SuccessRate; got != 66.67 {
		t.Errorf("success_rate = %v, want 66.67", got)
	}
	if got := New().SSE().Connections.SuccessRate; got != 0 {
		t.Errorf("success_rate before any attempt = %v, want 0", got)
	}
}

// Processing times of 1, 2, ... 100 ms, published in a shuffled order.
func TestSSEReportProcessingTimePercentiles(t *testing.T) {
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	m := New()
	m.now = func() time.Time { return now }
	h := m.HubHooks()
	for i := range 100 {
		ms := (i*37)%100 + 1 // 37 is coprime with 100: a permutation of 1..100
		h.Published(&hub.Change{Source: hub.SourceSSE, ReceivedAt: now.Add(-time.Duration(ms) * time.Millisecond)})
	}

	got := m.SSE().Events.ProcessingTime
	want := SSEProcessingTime{
		Count: 100, Sum: 5050, Avg: 50.5, Min: 1, Max: 100,
		P50: 50, P95: 95, P99: 99,
		Help: "Time to process SSE events in milliseconds", SampleCount: 100,
	}
	if got != want {
		t.Errorf("processing_time = %+v\nwant %+v", got, want)
	}
}

func TestSSEReportSubMillisecondTimesKeepMicroseconds(t *testing.T) {
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	m := New()
	m.now = func() time.Time { return now }
	m.HubHooks().Published(&hub.Change{ReceivedAt: now.Add(-250 * time.Microsecond)})
	if got := m.SSE().Events.ProcessingTime; got.P50 != 0.25 || got.Max != 0.25 {
		t.Errorf("p50 %v max %v, want 0.25 ms", got.P50, got.Max)
	}
}

func TestServeSSE(t *testing.T) {
	m := New()
	m.HubHooks().StreamEvent(1, sseupstream.Bid)

	rec := httptest.NewRecorder()
	m.ServeSSE(rec, httptest.NewRequest(http.MethodGet, "/metrics/sse", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET status %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var body SSEReport
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body is not the report: %v", err)
	}
	if body.Events.Total != 1 {
		t.Errorf("events.total %d, want 1", body.Events.Total)
	}

	rec = httptest.NewRecorder()
	m.ServeSSE(rec, httptest.NewRequest(http.MethodHead, "/metrics/sse", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: status %d with %d body bytes, want 200 and none", rec.Code, rec.Body.Len())
	}

	rec = httptest.NewRecorder()
	m.ServeSSE(rec, httptest.NewRequest(http.MethodPost, "/metrics/sse", strings.NewReader("{}")))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d Allow %q, want 405 and GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

// keyShape lists every key path of a JSON document, sorted.
func keyShape(t *testing.T, doc []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	var paths []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, child := range obj {
			paths = append(paths, prefix+k)
			walk(prefix+k+".", child)
		}
	}
	walk("", v)
	slices.Sort(paths)
	return paths
}
