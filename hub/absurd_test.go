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

// TestAbsurdPriceDoesNotFreezeTheFeed: a malformed bid event with an
// absurd price (1e15: refused by the decoder, and counted) and one with a
// merely implausible one ($5M, which the decoder lets through) must not
// freeze the lot: the later real bids and their close times still move.
func TestAbsurdPriceDoesNotFreezeTheFeed(t *testing.T) {
	const id = 58040119
	events := []string{
		`{"productId":%d,"currentBid":1e15,"bidCount":99,"timeRemaining":900}`,
		`{"productId":%d,"currentBid":125,"bidCount":15,"timeRemaining":300}`,
		`{"productId":%d,"currentBid":5000000,"timeRemaining":9000}`,
		`{"productId":%d,"currentBid":130,"bidCount":16,"timeRemaining":200}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: connected e1177558-b227-4b52-9d06-dabac95b4794,0x1-0x2\n\ndata: ping\n\n")
		for _, ev := range events {
			fmt.Fprintf(w, "event: ch_product_bids:%d\ndata: "+ev+"\n\n", id, id)
		}
		w.(http.Flusher).Flush()
		pingUntilDone(w, r)
	}))
	defer srv.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()

	var decodeErrors atomic.Int32
	first := lot(id, 100, 10)
	first.NextBid = ptr(101.0)
	ft := &fakeFetcher{state: map[int64]nellis.Patch{id: first}}
	h := New(Config{UseSSE: true, SSE: sseupstream.Config{Endpoint: srv.URL, HTTPClient: &http.Client{Transport: transport}}},
		Deps{Snapshots: ft, Hooks: Hooks{StreamDecodeError: func(int64, string) { decodeErrors.Add(1) }}})
	defer h.Close()
	r := newRecorder()
	defer h.Subscribe(id, r)()

	deadline := time.After(waitTimeout)
	for {
		select {
		case c := <-r.ch:
			if c.Product.CurrentBid > nellis.MaxAmount {
				t.Fatalf("absurd price taken: %+v", c.Product)
			}
			if c.Source != SourceSSE || c.Product.BidCount != 16 {
				continue
			}
			if c.Product.CurrentBid != 130 || c.Product.NextBid != 131 {
				t.Fatalf("last real bid: price %v next %v, want 130 and 131", c.Product.CurrentBid, c.Product.NextBid)
			}
			if left := c.Product.CloseTime.Sub(c.ReceivedAt); left != 200*time.Second {
				t.Errorf("close time %v after the last bid, want 200s", left)
			}
			if n := decodeErrors.Load(); n != 1 {
				t.Errorf("%d decode errors counted, want 1 (the 1e15 event)", n)
			}
			return
		case <-deadline:
			t.Fatalf("the bids after the absurd ones never arrived; status %+v", h.Status())
		}
	}
}
