package hub

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
)

// TestRealStreamDeliversBids runs a feed on a real sseupstream subscription
// against an SSE server speaking Nellis's wire format.
func TestRealStreamDeliversBids(t *testing.T) {
	const id = 58040119
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/live-products" || r.URL.Query().Get("productId") != fmt.Sprint(id) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: connected e1177558-b227-4b52-9d06-dabac95b4794,0xc003538ee0-0xc003538f50\n\n")
		fmt.Fprint(w, "data: ping\n\n")
		fmt.Fprintf(w, "event: ch_product_bids:%d\ndata: {\"productId\":%d,\"currentBid\":125.00,\"bidCount\":15,\"lastBidder\":\"user123\",\"timeRemaining\":300}\n\n", id, id)
		w.(http.Flusher).Flush()
		pingUntilDone(w, r)
	}))
	defer srv.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()

	ft := &fakeFetcher{state: map[int64]nellis.Patch{}}
	h := New(Config{UseSSE: true, SSE: sseupstream.Config{Endpoint: srv.URL, HTTPClient: &http.Client{Transport: transport}}}, Deps{Snapshots: ft})
	defer h.Close()
	r := newRecorder()
	defer h.Subscribe(id, r)()

	deadline := time.After(waitTimeout)
	for {
		select {
		case c := <-r.ch:
			if c.Source != SourceSSE {
				continue // the first snapshot
			}
			if c.Product.CurrentBid != 125 || c.Product.BidCount != 15 || c.Product.LastBidder != "user123" {
				t.Fatalf("sse change: %+v", c.Product)
			}
			if left := c.Product.CloseTime.Sub(c.ReceivedAt); left != 300*time.Second {
				t.Errorf("close time %v after receipt, want 300s", left)
			}
			st := h.Status()
			if len(st) != 1 || st[0].SessionID == "" || st[0].SinceLastByte < 0 {
				t.Errorf("status %+v, want the upstream session and a last byte", st)
			}
			if n := h.OpenStreams(); n != 1 {
				t.Errorf("%d streams open, want 1", n)
			}
			return
		case <-deadline:
			t.Fatalf("no sse change; status %+v", h.Status())
		}
	}
}

// TestRealStreamReconnectHealsGap: the upstream ends a stream (EOF) right
// after a bid the stream never carried; a snapshot delivers the bid within
// seconds, and the real subscription reconnects. Which snapshot heals it
// is timing: the poll the lot takes on losing its stream, or the
// reconcile when the stream is back, whichever runs first.
func TestRealStreamReconnectHealsGap(t *testing.T) {
	const id = 7
	ft := &fakeFetcher{state: map[int64]nellis.Patch{id: lot(id, 100, 4)}}
	reconciled := make(chan struct{}, 10)
	connections := make(chan int, 10)
	var conns atomic.Int32
	var eofAt atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := conns.Add(1)
		connections <- int(n)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: connected session-%d,0x1-0x2\n\ndata: ping\n\n", n)
		w.(http.Flusher).Flush()
		if n == 1 {
			select {
			case <-reconciled: // the connect's reconcile is done
			case <-r.Context().Done():
				return
			}
			ft.set(id, lot(id, 150, 6)) // a bid the stream misses
			eofAt.Store(time.Now().UnixNano())
			return // EOF
		}
		pingUntilDone(w, r)
	}))
	defer srv.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()

	h := New(Config{UseSSE: true, SSE: sseupstream.Config{Endpoint: srv.URL, HTTPClient: &http.Client{Transport: transport}}},
		Deps{Snapshots: ft, Hooks: Hooks{PollResult: func(_ int64, src Source, _ time.Duration, _ error) {
			if src == SourceReconcile {
				reconciled <- struct{}{}
			}
		}}})
	defer h.Close()
	r := newRecorder()
	defer h.Subscribe(id, r)()

	deadline := time.After(waitTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	healed := false
	for !healed || conns.Load() < 2 {
		select {
		case <-connections: // counted by conns; drained so the server never waits
		case <-tick.C:
		case c := <-r.ch:
			if c.Product.CurrentBid != 150 || healed {
				continue
			}
			healed = true
			if c.Source != SourceReconcile && c.Source != SourcePoll {
				t.Fatalf("the missed bid came from %s, want a snapshot (reconcile or poll)", c.Source)
			}
			if d := time.Since(time.Unix(0, eofAt.Load())); d > 3*time.Second {
				t.Fatalf("missed bid delivered %v after the stream ended, want within 3s", d)
			}
		case <-deadline:
			t.Fatalf("missed bid delivered: %v, stream reconnected: %v; status %+v", healed, conns.Load() >= 2, h.Status())
		}
	}
}

// pingUntilDone keeps an SSE response alive with a ping every 100ms until
// the client goes away.
func pingUntilDone(w http.ResponseWriter, r *http.Request) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			fmt.Fprint(w, "data: ping\n\n")
			w.(http.Flusher).Flush()
		}
	}
}
