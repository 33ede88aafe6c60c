package nellis

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// legacyJSON is the ?_data= answer the predecessor read, with every field
// of docs/protocol.md, Snapshots, and bidHistory beside the product.
const legacyJSON = `{
  "product": {
    "id": 58040119,
    "title": "Sound Bar",
    "currentPrice": 125,
    "retailPrice": "40.66",
    "bidCount": 15,
    "bidderCount": 4,
    "marketStatus": "open",
    "isClosed": false,
    "closeTime": {"__type": "Date", "value": "2026-09-16T01:53:00.000Z"},
    "extensionInterval": 45,
    "location": {"id": 10, "name": "Phoenix", "zipCode": 85009},
    "inventoryNumber": 1234,
    "photos": [{"url": "https://example.invalid/1.jpg"}, {"url": "https://example.invalid/2.jpg"}],
    "userState": {"isWinning": true, "isWatching": false, "nextBid": 127}
  },
  "bidHistory": [{"amount": "$125.00"}]
}`

func TestDecodeSnapshotJSON(t *testing.T) {
	snap, err := DecodeSnapshotJSON([]byte(legacyJSON), 58040119)
	if err != nil {
		t.Fatal(err)
	}
	p := snap.Patch
	if snap.Format != FormatJSON || p.ProductID != 58040119 || *p.Title != "Sound Bar" || *p.CurrentBid != 125 ||
		*p.RetailPrice != 40.66 || *p.BidCount != 15 || *p.BidderCount != 4 || *p.MarketStatus != "open" ||
		*p.IsClosed || !p.CloseTime.Equal(time.Date(2026, 9, 16, 1, 53, 0, 0, time.UTC)) ||
		*p.ExtensionInterval != 45 || *p.InventoryNumber != "1234" || *p.ImageURL != "https://example.invalid/1.jpg" ||
		*p.NextBid != 126 || *p.MinimumBid != 126 {
		t.Errorf("decoded %s", dumpPatch(p))
	}
	// The user state is the cookies' owner's alone: kept apart, never in
	// the public next bid.
	if u := p.User; u == nil || !*u.IsWinning || *u.IsWatching || *u.NextBid != 127 {
		t.Errorf("user state %s", dumpPatch(p))
	}
	if string(p.Location) != `{"id":10,"name":"Phoenix","zipCode":85009}` {
		t.Errorf("Location = %s", p.Location)
	}
}

func TestDecodeSnapshotJSONDefaults(t *testing.T) {
	snap, err := DecodeSnapshotJSON([]byte(`{"product":{"id":"7","currentPrice":"41.00"}}`), 7)
	if err != nil {
		t.Fatal(err)
	}
	p := snap.Patch
	if *p.ExtensionInterval != DefaultExtensionInterval {
		t.Errorf("ExtensionInterval = %d, want the default", *p.ExtensionInterval)
	}
	if *p.NextBid != 42 || *p.MinimumBid != 42 {
		t.Errorf("NextBid, MinimumBid = %v, %v; want price + 1", *p.NextBid, *p.MinimumBid)
	}
	if *p.IsClosed {
		t.Error("a product with no status is closed")
	}
	// Without the user's cookies there is no userState: unknown, not false.
	if p.User != nil {
		t.Errorf("user state invented: %s", dumpPatch(p))
	}
	if p.CloseTime != nil || p.Title != nil || p.Location != nil || p.ImageURL != nil {
		t.Errorf("absent fields set: %s", dumpPatch(p))
	}
}

func TestDecodeSnapshotJSONClosedByMarketStatus(t *testing.T) {
	for _, status := range []string{"sold", "closed", "Ended"} {
		body := `{"product":{"id":1,"currentPrice":5,"marketStatus":"` + status + `","isClosed":false}}`
		snap, err := DecodeSnapshotJSON([]byte(body), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !*snap.Patch.IsClosed {
			t.Errorf("marketStatus %q: IsClosed = false", status)
		}
	}
	snap, err := DecodeSnapshotJSON([]byte(`{"product":{"id":1,"currentPrice":5,"marketStatus":"active"}}`), 1)
	if err != nil || *snap.Patch.IsClosed {
		t.Errorf("marketStatus active: %v, %v", err, snap.Patch.IsClosed)
	}
}

func TestDecodeSnapshotJSONRejects(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantID  int64
		kind    error
		wantMsg string
	}{
		{"empty body", "", 1, ErrNoData, "empty body"},
		{"blank body", " \n", 1, ErrNoData, "empty body"},
		{"not json", "<!DOCTYPE html>", 1, ErrMalformed, "not JSON"},
		{"array", `[1]`, 1, ErrMalformed, "want an object"},
		{"no product", `{"bidHistory":[]}`, 1, ErrNoData, `no "product" field`},
		{"null product", `{"product":null}`, 1, ErrNoData, `no "product" field`},
		{"product not an object", `{"product":"x"}`, 1, ErrNoData, "want an object"},
		{"no id", `{"product":{"currentPrice":1}}`, 1, ErrNoData, "no id"},
		{"other product", `{"product":{"id":2,"currentPrice":1}}`, 1, ErrWrongProduct, "got product 2, want 1"},
		{"other product as string", `{"product":{"id":"2","currentPrice":1}}`, 1, ErrWrongProduct, "got product 2, want 1"},
		{"non-numeric id", `{"product":{"id":"sample-001","currentPrice":1}}`, 1, ErrWrongProduct, "is not a product id"},
		{"no price", `{"product":{"id":1,"title":"x"}}`, 1, ErrNoData, "no currentPrice"},
		{"null price", `{"product":{"id":1,"currentPrice":null}}`, 1, ErrNoData, "no currentPrice"},
		{"bad price", `{"product":{"id":1,"currentPrice":"free"}}`, 1, ErrMalformed, `field "currentPrice"`},
		{"bad close time", `{"product":{"id":1,"currentPrice":1,"closeTime":{"value":"later"}}}`, 1, ErrMalformed, `field "closeTime"`},
		{"bad user state", `{"product":{"id":1,"currentPrice":1,"userState":{"isWinning":"maybe"}}}`, 1, ErrMalformed, `field "userState.isWinning"`},
		{"invalid wanted id", `{"product":{"id":1,"currentPrice":1}}`, 0, nil, "invalid product id 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := DecodeSnapshotJSON([]byte(tt.body), tt.wantID)
			if err == nil {
				t.Fatalf("decoded %s, want an error", dumpPatch(snap.Patch))
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %q does not wrap %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if !snap.Patch.Empty() || snap.Format != "" {
				t.Errorf("a failed decode returned data: %+v", snap)
			}
		})
	}
}

// The auction-lens product samples carry real field names with synthetic,
// non-numeric ids. The file itself is not a snapshot; each sample, wrapped
// as one, is refused for its id; with a numeric id it decodes, and a zero
// price (no bids yet) is a price, not a missing one.
func TestDecodeSnapshotJSONAuctionLensSamples(t *testing.T) {
	file := readSample(t, "turbostream", "auction-lens_fixtures_nellis_product-grade-samples.json")
	if _, err := DecodeSnapshotJSON(file, 1); !errors.Is(err, ErrNoData) {
		t.Errorf("the sample file as a snapshot: %v, want ErrNoData", err)
	}
	var doc struct {
		Samples []map[string]any `json:"samples"`
	}
	if err := json.Unmarshal(file, &doc); err != nil || len(doc.Samples) != 3 {
		t.Fatalf("samples: %v, %d", err, len(doc.Samples))
	}
	for i, sample := range doc.Samples {
		wrapped, _ := json.Marshal(map[string]any{"product": sample})
		if _, err := DecodeSnapshotJSON(wrapped, 1); !errors.Is(err, ErrWrongProduct) {
			t.Errorf("sample %v: %v, want ErrWrongProduct", sample["id"], err)
		}
		sample["id"] = i + 1
		wrapped, _ = json.Marshal(map[string]any{"product": sample})
		snap, err := DecodeSnapshotJSON(wrapped, int64(i+1))
		if err != nil {
			t.Fatalf("sample %d: %v", i+1, err)
		}
		p := snap.Patch
		if *p.CurrentBid != sample["currentPrice"] || *p.InventoryNumber != sample["inventoryNumber"] ||
			*p.ImageURL == "" || p.CloseTime == nil || *p.IsClosed {
			t.Errorf("sample %d decoded %s", i+1, dumpPatch(p))
		}
	}
}

// dumpPatch renders a patch readably for a failure message.
func dumpPatch(p Patch) string {
	b, _ := json.Marshal(p)
	return string(b)
}
