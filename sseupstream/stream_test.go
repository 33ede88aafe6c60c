package sseupstream

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleStream is the derived wire example of docs/protocol.md, SSE events: a connected
// greeting, a ping, a bid and a close for product 58040119, preceded by
// "#" lines that a client must ignore as unknown fields.
func sampleStream(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "samples", "nellis_sse_stream.wire-example.DERIVED.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// serveOnce answers the first request with body and ends the stream, and
// holds later requests open silently.
func serveOnce(t *testing.T, body string) *sseServer {
	return newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		if n == 1 {
			send(w, body)
			return
		}
		<-r.Context().Done()
	})
}

// collect returns the events of the first stream, up to its end.
func collect(t *testing.T, rec *recorder) []Event {
	t.Helper()
	var events []Event
	for {
		select {
		case ev := <-rec.events:
			events = append(events, ev)
		case <-rec.downs:
			// The stream ended; everything it carried was sent before.
			for {
				select {
				case ev := <-rec.events:
					events = append(events, ev)
				default:
					return events
				}
			}
		case bad := <-rec.decodes:
			t.Fatalf("unexpected decode error: %v", bad.err)
		case <-time.After(testTimeout):
			t.Fatalf("stream did not end; got %d events", len(events))
		}
	}
}

func TestWireFormats(t *testing.T) {
	sample := sampleStream(t)
	// The events alone, so that a BOM or comment comes right before the
	// first event rather than before the sample's "#" notes.
	events := sample[strings.Index(sample, "data: connected"):]
	tests := map[string]string{
		"LF":              sample,
		"CRLF":            strings.ReplaceAll(sample, "\n", "\r\n"),
		"CR":              strings.ReplaceAll(sample, "\n", "\r"),
		"BOM":             "\xEF\xBB\xBF" + events,
		"BOM CRLF":        "\xEF\xBB\xBF" + strings.ReplaceAll(events, "\n", "\r\n"),
		"comment lines":   ": hello\n\n" + strings.ReplaceAll(events, "data:", ": note\ndata:"),
		"BOM comment":     "\xEF\xBB\xBF: first\n" + events,
		"no space":        strings.ReplaceAll(strings.ReplaceAll(sample, "data: ", "data:"), "event: ", "event:"),
		"cut final event": sample + "event: ch_product_bids:58040119\ndata: {\"currentBid\": 9",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			_, rec := subscribe(t, testConfig(serveOnce(t, body), newFakeClock()))
			events := collect(t, rec)
			if len(events) != 4 {
				t.Fatalf("got %d events, want 4: %+v", len(events), events)
			}
			kinds := []Kind{Connected, Ping, Bid, Closed}
			for i, ev := range events {
				if ev.Kind != kinds[i] || ev.ProductID != testProductID || ev.ReceivedAt.IsZero() {
					t.Errorf("event %d: %v for %d at %v, want %v for %d", i, ev.Kind, ev.ProductID, ev.ReceivedAt, kinds[i], testProductID)
				}
			}
			if got := events[0].SessionID; got != "e1177558-b227-4b52-9d06-dabac95b4794,0xc003538ee0-0xc003538f50" {
				t.Errorf("session id %q", got)
			}
			if events[0].Name != "" || string(events[1].Data) != "ping" {
				t.Errorf("unnamed events: name %q, data %q", events[0].Name, events[1].Data)
			}
			bid := events[2]
			if bid.Name != "ch_product_bids:58040119" || bid.Patch.CurrentBid == nil || *bid.Patch.CurrentBid != 125 ||
				bid.Patch.LastBidder == nil || *bid.Patch.LastBidder != "user123" {
				t.Errorf("bid %q decoded as %+v", bid.Name, bid.Patch)
			}
			if !bytes.HasPrefix(bid.Data, []byte(`{"productId":58040119,"currentBid":125.00`)) {
				t.Errorf("bid data %q", bid.Data)
			}
			closed := events[3]
			if closed.Patch.FinalBid == nil || *closed.Patch.FinalBid != 125 || closed.Patch.Winner == nil || *closed.Patch.Winner != "user123" {
				t.Errorf("close decoded as %+v", closed.Patch)
			}
		})
	}
}

func TestMultiLineDataAndOtherEvents(t *testing.T) {
	body := "data: first\ndata: second\n\n" +
		"event: ch_something_new:1\ndata: {}\n\n" +
		"event: no-data\n\n" +
		"data:\n\n"
	_, rec := subscribe(t, testConfig(serveOnce(t, body), newFakeClock()))
	events := collect(t, rec)
	if len(events) != 3 {
		t.Fatalf("got %d events, want 3: %+v", len(events), events)
	}
	if events[0].Kind != Other || string(events[0].Data) != "first\nsecond" {
		t.Errorf("multi-line: %v %q", events[0].Kind, events[0].Data)
	}
	if events[1].Kind != Other || events[1].Name != "ch_something_new:1" {
		t.Errorf("unknown named event: %v %q", events[1].Kind, events[1].Name)
	}
	if events[2].Kind != Other || len(events[2].Data) != 0 {
		t.Errorf("empty data event: %v %q", events[2].Kind, events[2].Data)
	}
}

func TestBadPayloadIsSkippedAndStreamContinues(t *testing.T) {
	body := "event: ch_product_bids:58040119\ndata: {not json\n\n" +
		"event: ch_product_bids:999\ndata: {\"currentBid\": 7}\n\n" +
		"event: ch_product_bids:58040119\ndata: {\"productId\": 999, \"currentBid\": 8}\n\n" +
		"event: ch_product_bids:58040119\ndata: {\"currentBid\": 150, \"bidCount\": 5, \"lastBidder\": \"user123\"}\n\n"
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		send(w, body)
		<-r.Context().Done()
	})
	_, rec := subscribe(t, testConfig(srv, newFakeClock()))

	for i, want := range []string{"{not json", "product 999", "product 999"} {
		bad := next(t, rec.decodes)
		if bad.productID != testProductID || !strings.HasPrefix(bad.name, "ch_product_bids:") || !strings.Contains(bad.err.Error(), want) {
			t.Errorf("decode error %d: %+v, want one mentioning %q", i, bad, want)
		}
	}
	ev := next(t, rec.events)
	if ev.Kind != Bid || ev.Patch.CurrentBid == nil || *ev.Patch.CurrentBid != 150 || *ev.Patch.BidCount != 5 {
		t.Fatalf("good bid after bad ones: %v %+v", ev.Kind, ev.Patch)
	}
	none(t, rec.downs)
}

func TestLargeEvents(t *testing.T) {
	bidOf := func(padding int) string {
		return `{"currentBid":321,"description":"` + strings.Repeat("x", padding) + `"}`
	}
	t.Run("2 MiB with a 4 MiB limit", func(t *testing.T) {
		payload := bidOf(2 << 20)
		cfg := testConfig(serveOnce(t, "event: ch_product_bids:58040119\ndata: "+payload+"\n\n"), newFakeClock())
		cfg.MaxEventSize = 4 << 20
		_, rec := subscribe(t, cfg)
		ev := next(t, rec.events)
		if ev.Kind != Bid || string(ev.Data) != payload || *ev.Patch.CurrentBid != 321 {
			t.Fatalf("got %v with %d bytes, want the %d-byte bid intact", ev.Kind, len(ev.Data), len(payload))
		}
	})
	t.Run("70 KiB with defaults", func(t *testing.T) {
		payload := bidOf(70 << 10)
		_, rec := subscribe(t, testConfig(serveOnce(t, "event: ch_product_bids:58040119\r\ndata: "+payload+"\r\n\r\n"), newFakeClock()))
		ev := next(t, rec.events)
		if ev.Kind != Bid || string(ev.Data) != payload {
			t.Fatalf("got %v with %d bytes, want the %d-byte bid intact", ev.Kind, len(ev.Data), len(payload))
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		clock := newFakeClock()
		srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
			startStream(w)
			if n == 1 {
				send(w, "data: "+strings.Repeat("y", 2048)+"\n\ndata: ping\n\n")
			} else {
				send(w, "data: connected after-too-large\n\n")
			}
			<-r.Context().Done()
		})
		cfg := testConfig(srv, clock)
		cfg.MaxEventSize = 1024
		sub, rec := subscribe(t, cfg)

		bad := next(t, rec.decodes)
		if !errors.Is(bad.err, ErrEventTooLarge) {
			t.Fatalf("decode error %v, want ErrEventTooLarge", bad.err)
		}
		down := next(t, rec.downs)
		if down.reason != ReasonTooLarge || !errors.Is(down.err, ErrEventTooLarge) {
			t.Fatalf("down %q %v, want too_large", down.reason, down.err)
		}
		sleepThrough(t, clock, down.retryIn)
		if ev := next(t, rec.events); ev.Kind != Connected {
			t.Fatalf("after reconnect got %v, want connected", ev.Kind)
		}
		if sub.SessionID() != "after-too-large" {
			t.Fatalf("session id %q", sub.SessionID())
		}
	})
	t.Run("exactly the limit", func(t *testing.T) {
		block := "data: " + strings.Repeat("z", 1024-len("data: "))
		cfg := testConfig(serveOnce(t, block+"\r\n\r\n"), newFakeClock())
		cfg.MaxEventSize = len(block)
		_, rec := subscribe(t, cfg)
		if ev := next(t, rec.events); len(ev.Data) != 1024-len("data: ") {
			t.Fatalf("got %d bytes", len(ev.Data))
		}
		none(t, rec.decodes)
	})
}

func TestCorruptCompressedBodyIsDecodeFailure(t *testing.T) {
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		startStream(w)
		send(w, "this is not gzip at all, not even close")
	})
	_, rec := subscribe(t, testConfig(srv, newFakeClock()))
	down := next(t, rec.downs)
	if down.reason != ReasonDecode || down.err == nil {
		t.Fatalf("down %q %v, want decode", down.reason, down.err)
	}
}
