package nellis

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeSnapshotHTML(t *testing.T) {
	snap, err := DecodeSnapshotHTML(readSample(t, "turbostream", "synthetic", "remix-document.html"), 123456789)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Format != FormatHTML {
		t.Errorf("Format = %q", snap.Format)
	}
	if want := syntheticProduct(); !reflect.DeepEqual(snap.Patch, want) {
		t.Errorf("decoded\n %s\nwant\n %s", dumpPatch(snap.Patch), dumpPatch(want))
	}
}

// enqueuePage renders a stream as Remix does: one script per chunk, each
// chunk a JSON string literal with <, > and & escaped.
func enqueuePage(chunks ...string) []byte {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html><html><head><title>x</title></head><body>`)
	b.WriteString(`<script>window.__remixContext = {"basename":"/","future":{"v3_singleFetch":true}};</script>`)
	for _, c := range chunks {
		lit, _ := json.Marshal(c) // escapes <, > and & as \u003c…
		b.WriteString(`<SCRIPT nonce="n">window.__remixContext.streamController.enqueue( ` + string(lit) + ` );</SCRIPT>`)
	}
	b.WriteString(`<script>window.__remixContext.streamController.close();</script></body></html>`)
	return []byte(b.String())
}

func TestDecodeSnapshotHTMLJoinsChunksInOrder(t *testing.T) {
	stream := string(readSample(t, "turbostream", "synthetic", "remix-document-stream.txt"))
	// Cut the stream at arbitrary points, including inside a string
	// holding `")`: only the joined text is turbo-stream.
	cut := strings.Index(stream, `13.75\")`) + 5
	page := enqueuePage(stream[:100], stream[100:cut], stream[cut:])
	snap, err := DecodeSnapshotHTML(page, 123456789)
	if err != nil {
		t.Fatal(err)
	}
	if want := syntheticProduct(); !reflect.DeepEqual(snap.Patch, want) {
		t.Errorf("decoded\n %s\nwant\n %s", dumpPatch(snap.Patch), dumpPatch(want))
	}
}

func TestDecodeSnapshotHTMLLegacyContext(t *testing.T) {
	page := `<html><body><script>
window.__remixContext = {"url":"/p/x/9","state":{"loaderData":{"root":{},"routes/p.$title.$productId._index":{"product":{"id":9,"currentPrice":12,"closeTime":{"__type":"Date","value":"2026-01-02T03:04:05.000Z"},"marketStatus":"sold"}}}},"future":{}};
__remixContext.p = function(){};</script></body></html>`
	snap, err := DecodeSnapshotHTML([]byte(page), 9)
	if err != nil {
		t.Fatal(err)
	}
	p := snap.Patch
	if p.ProductID != 9 || *p.CurrentBid != 12 || !*p.IsClosed || p.CloseTime == nil || snap.Format != FormatHTML {
		t.Errorf("decoded %s", dumpPatch(p))
	}
}

func TestDecodeSnapshotHTMLRejects(t *testing.T) {
	lensPage := readSample(t, "turbostream", "auction-lens_fixtures_nellis_product-page.html")
	data404 := string(readSample(t, "turbostream", "synthetic", "remix-2.17.0-data-404.data.txt"))
	tests := []struct {
		name    string
		page    []byte
		wantID  int64
		kind    error
		wantMsg string
	}{
		{"empty body", nil, 1, ErrNoData, "empty body"},
		{"page without data", []byte(`<html><body><script>var x = 1;</script><p>window.__remixContext.streamController.enqueue("[]")</p></body></html>`), 1, ErrNoData, "no Remix loader data"},
		{"single fetch context only", []byte(`<script>window.__remixContext = {"basename":"/"};</script>`), 1, ErrNoData, "no Remix loader data"},
		// Plain nested JSON in enqueue() is no format Remix writes: refused,
		// not guessed at.
		{"auction-lens fixture", lensPage, 1, ErrMalformed, `object key "loaderData" is not an index reference`},
		{"argument not a string", []byte(`<script>window.__remixContext.streamController.enqueue(chunk)</script>`), 1, ErrMalformed, "not a JSON string literal"},
		{"unterminated call", []byte(`<script>window.__remixContext.streamController.enqueue("[1]" + x)</script>`), 1, ErrMalformed, "not followed by ')'"},
		{"other product", readSample(t, "turbostream", "synthetic", "remix-document.html"), 5, ErrWrongProduct, "want 5"},
		{"no product route", enqueuePage(`[{"_1":2},"loaderData",{"_3":4},"root",{}]` + "\n"), 1, ErrNoData, "no route"},
		{"route error", enqueuePage(`[{"_1":2,"_3":4},"loaderData",{},"errors",{"_5":6},"routes/p.$title.$productId._index",["ErrorResponse",7,8,9],"Not Found",404,""]`), 1, nil, "404"},
		{"data route text", enqueuePage(data404), 1, ErrNoData, "no loaderData"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := DecodeSnapshotHTML(tt.page, tt.wantID)
			if err == nil {
				t.Fatalf("decoded %s, want an error", dumpPatch(snap.Patch))
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %q does not wrap %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

func TestDecodeSnapshotHTMLRouteErrorIsErrorResponse(t *testing.T) {
	page := enqueuePage(`[{"_1":2,"_3":4},"loaderData",{},"errors",{"_5":6},"routes/p.$title.$productId._index",["ErrorResponse",7,8,9],"Not Found",404,""]`)
	_, err := DecodeSnapshotHTML(page, 1)
	var e *ErrorResponse
	if !errors.As(err, &e) || e.Status != 404 {
		t.Errorf("error %v, want a 404 *ErrorResponse", err)
	}
}
