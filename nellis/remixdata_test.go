package nellis

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// syntheticProduct is the product of the synthetic Remix samples, as a full
// snapshot must carry it.
func syntheticProduct() Patch {
	return Patch{
		ProductID:         123456789,
		Title:             ptr(`Desk (width 22"-36", min height 13.75") & <chair>`),
		CurrentBid:        ptr(41.0),
		NextBid:           ptr(42.0),
		MinimumBid:        ptr(42.0),
		BidCount:          ptr(5),
		BidderCount:       ptr(2),
		IsClosed:          ptr(false),
		MarketStatus:      ptr("open"),
		CloseTime:         ptr(time.Date(2026, 9, 16, 1, 53, 0, 0, time.UTC)),
		ExtensionInterval: ptr(30),
		RetailPrice:       ptr(726.24),
		Location:          json.RawMessage(`{"id":10,"name":"Phoenix","state":"AZ"}`),
		InventoryNumber:   ptr("0000000002"),
		ImageURL:          ptr("https://example.invalid/1.jpg"),
		User:              &UserState{IsWinning: ptr(false), IsWatching: ptr(false), NextBid: ptr(42.0)},
	}
}

func TestDecodeSnapshotData(t *testing.T) {
	snap, err := DecodeSnapshotData(readSample(t, "turbostream", "synthetic", "remix-route.data.txt"), 123456789)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Format != FormatData {
		t.Errorf("Format = %q", snap.Format)
	}
	if want := syntheticProduct(); !reflect.DeepEqual(snap.Patch, want) {
		t.Errorf("decoded\n %s\nwant\n %s", dumpPatch(snap.Patch), dumpPatch(want))
	}
}

// The real Remix 2.17 handler writes dates as a Date tag for a plain loader
// and as ISO strings for json(); both must give the same snapshot.
func TestDecodeSnapshotDataRemixLoaders(t *testing.T) {
	for _, name := range []string{"remix-2.17.0-data-naked.data.txt", "remix-2.17.0-data-json.data.txt"} {
		t.Run(name, func(t *testing.T) {
			snap, err := DecodeSnapshotData(readSample(t, "turbostream", "synthetic", name), 123)
			if err != nil {
				t.Fatal(err)
			}
			p := snap.Patch
			if p.ProductID != 123 || *p.CurrentBid != 41 || *p.NextBid != 42 ||
				!p.CloseTime.Equal(time.Date(2026, 9, 16, 1, 53, 0, 0, time.UTC)) {
				t.Errorf("decoded %s", dumpPatch(p))
			}
		})
	}
}

func TestDecodeSnapshotDataErrors(t *testing.T) {
	sample := func(name string) []byte { return readSample(t, "turbostream", "synthetic", name) }
	t.Run("redirect", func(t *testing.T) {
		_, err := DecodeSnapshotData(sample("remix-2.17.0-data-redirect-202.data.txt"), 123)
		var r *Redirect
		if !errors.As(err, &r) || r.Location != "/p/Real-Title/123" || r.Status != 301 {
			t.Errorf("error %v, want a *Redirect to /p/Real-Title/123", err)
		}
	})
	t.Run("404", func(t *testing.T) {
		_, err := DecodeSnapshotData(sample("remix-2.17.0-data-404.data.txt"), 123)
		var e *ErrorResponse
		if !errors.As(err, &e) || e.Status != 404 {
			t.Errorf("error %v, want a 404 *ErrorResponse", err)
		}
	})
	t.Run("500", func(t *testing.T) {
		_, err := DecodeSnapshotData(sample("remix-2.17.0-data-500.data.txt"), 123)
		var e *RemoteError
		if !errors.As(err, &e) || !strings.Contains(err.Error(), "Unexpected Server Error") {
			t.Errorf("error %v, want a *RemoteError", err)
		}
	})
	tests := []struct {
		name   string
		body   []byte
		wantID int64
		kind   error
	}{
		{"other product", sample("remix-route.data.txt"), 1, ErrWrongProduct},
		{"empty body", nil, 1, ErrNoData},
		{"html instead", []byte("<!doctype html><html></html>"), 1, ErrMalformed},
		{"v3 stream", sample("turbo-stream-3.2.1-encoding-example.txt"), 1, ErrMalformed},
		{"no product route", []byte(`[{"_1":2},"root",{"_3":4},"data",{}]`), 1, ErrNoData},
		{"route without product", []byte(`[{"_1":2},"routes/p.$title.$productId._index",{"_3":4},"data",{}]`), 1, ErrNoData},
		{"product without price", []byte(`[{"_1":2},"routes/p.$title.$productId._index",{"_3":4},"data",{"_5":6},"product",{"_7":8},"id",1]`), 1, ErrNoData},
		{"root not an object", []byte(`["x"]`), 1, ErrNoData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := DecodeSnapshotData(tt.body, tt.wantID)
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %v, want %v", err, tt.kind)
			}
			if !snap.Patch.Empty() {
				t.Errorf("a failed decode returned data: %s", dumpPatch(snap.Patch))
			}
		})
	}
}
