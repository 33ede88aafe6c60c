package nellis

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The fuzz targets run their seed corpus in every `go test`; run one with
// `go test -fuzz=FuzzDecodeTurboStream ./nellis` to search further.

func FuzzDecodeBid(f *testing.F) {
	for _, name := range []string{
		"nellis_sse_bid_update.EXPECTED-UNVERIFIED.json", "nellis_sse_bid_update.unit-test-fixture.json",
		"nellis_sse_auction_closed.EXPECTED-UNVERIFIED.json", "nellis_sse_auction_closed.unit-test-fixture.json",
	} {
		f.Add(readSample(f, name))
	}
	for _, s := range []string{
		`{"currentPrice":"125.00","bid_count":"3","username":"u","closeTime":{"__type":"Date","value":1789523580000}}`,
		`{"current_bid":"$1,041.00","timeRemaining":"2.5","projectNewCloseTime":"2026-09-16T01:53:00Z","minimumNextBid":43}`,
		`{"productId":"58040119","finalBid":null,"final_bid":9,"closedAt":"1789523580000","winner":"w"}`,
		`{}`, `[]`, `null`, `ping`, `{"currentBid":-1}`, `{"timeRemaining":1e300}`, `{"closeTime":{"value":{"value":1}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, err := DecodeBid(data); err == nil {
			if p.Empty() {
				t.Errorf("DecodeBid(%q) succeeded with an empty patch", data)
			}
			checkPatchSanity(t, p)
		} else if !p.Empty() {
			t.Errorf("DecodeBid(%q) failed but returned data", data)
		}
		if p, err := DecodeClosed(data); err == nil {
			if p.IsClosed == nil || !*p.IsClosed {
				t.Errorf("DecodeClosed(%q) did not close", data)
			}
			if (p.FinalBid == nil) != (p.CurrentBid == nil) || (p.FinalBid != nil && *p.FinalBid != *p.CurrentBid) {
				t.Errorf("DecodeClosed(%q): final bid and current bid disagree", data)
			}
			checkPatchSanity(t, p)
		}
	})
}

func FuzzDecodeSnapshotJSON(f *testing.F) {
	f.Add([]byte(legacyJSON), int64(58040119))
	f.Add([]byte(`{"product":{"id":"7","currentPrice":"41.00"}}`), int64(7))
	f.Add([]byte(`{"product":{"id":1,"currentPrice":0,"marketStatus":"sold","userState":{"nextBid":"2"}}}`), int64(1))
	f.Add([]byte(`{"product":{"id":1,"currentPrice":1,"closeTime":"1789523580000","photos":["u"],"location":"PHX"}}`), int64(1))
	f.Add(readSample(f, "turbostream", "auction-lens_fixtures_nellis_product-grade-samples.json"), int64(1))
	f.Add([]byte(``), int64(1))
	f.Fuzz(func(t *testing.T, body []byte, wantID int64) {
		snap, err := DecodeSnapshotJSON(body, wantID)
		if err != nil {
			if !snap.Patch.Empty() {
				t.Errorf("failed but returned data")
			}
			return
		}
		checkSnapshot(t, snap, wantID, FormatJSON)
	})
}

func FuzzDecodeTurboStream(f *testing.F) {
	dir := filepath.Join(samplesDir, "turbostream", "synthetic")
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".txt" {
			f.Add(readSample(f, "turbostream", "synthetic", e.Name()))
		}
	}
	for _, s := range []string{
		`[["M",1,2,3,4],"k",{"_1":3},{"_5":4},1,"n"]`,
		`[["S",1,2],"a","b"]`,
		"[{\"_1\":2},\"p\",[\"P\",7]]\nP7:[[4],\"x\"]\n",
		"[[\"P\",3]]\nE3:[[\"E\",\"nope\"]]\n",
		`[[-1,-2,-3,-4,-5,-6,-7]]`,
		`[["N",{"_1":2}],"a",1]`,
		`[["Z",1],"done"]`,
		`[{"_1":0},"me"]`,
		`[[0]]`,
		`-7`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeTurboStream(data)
		if err == nil {
			checkAcyclic(t, v, map[uintptr]bool{}, map[uintptr]bool{})
		}
		if snap, err := DecodeSnapshotData(data, 123456789); err == nil {
			checkSnapshot(t, snap, 123456789, FormatData)
		}
	})
}

func FuzzDecodeSnapshotHTML(f *testing.F) {
	f.Add(readSample(f, "turbostream", "synthetic", "remix-document.html"))
	f.Add(readSample(f, "turbostream", "auction-lens_fixtures_nellis_product-page.html"))
	f.Add(enqueuePage(`[{"_1":2},"loaderData",{"_3":4},"routes/p.$title.$productId._index",{"_5":6},"product",{"_7":8,"_9":10},"id",123456789,"currentPrice",5]`))
	f.Add([]byte(`<script>window.__remixContext = {"state":{"loaderData":{"routes/p.$title.$productId._index":{"product":{"id":123456789,"currentPrice":12}}}}};</script>`))
	f.Add([]byte(`<script>window.__remixContext.streamController.enqueue("[1]" + x)</script>`))
	f.Add([]byte(`<SCRIPT>window.__remixContext.streamController.enqueue(`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if snap, err := DecodeSnapshotHTML(body, 123456789); err == nil {
			checkSnapshot(t, snap, 123456789, FormatHTML)
		}
	})
}

// checkSnapshot asserts what every successful snapshot promises: the
// product asked for, a price, and a full patch.
func checkSnapshot(t *testing.T, snap Snapshot, wantID int64, format string) {
	t.Helper()
	p := snap.Patch
	if snap.Format != format || p.ProductID != wantID {
		t.Errorf("snapshot of %d in %q, want %d in %q", p.ProductID, snap.Format, wantID, format)
	}
	if p.CurrentBid == nil || p.NextBid == nil || p.MinimumBid == nil || *p.MinimumBid != *p.NextBid ||
		p.IsClosed == nil || p.ExtensionInterval == nil {
		t.Errorf("snapshot patch is not full: %s", dumpPatch(p))
	}
	checkPatchSanity(t, p)
}

// checkPatchSanity asserts that no amount, count or duration is negative or
// not finite.
func checkPatchSanity(t *testing.T, p Patch) {
	t.Helper()
	for name, f := range map[string]*float64{"CurrentBid": p.CurrentBid, "NextBid": p.NextBid, "MinimumBid": p.MinimumBid, "RetailPrice": p.RetailPrice, "FinalBid": p.FinalBid} {
		if f != nil && (*f < 0 || math.IsNaN(*f) || math.IsInf(*f, 0)) {
			t.Errorf("%s = %v", name, *f)
		}
	}
	for name, n := range map[string]*int{"BidCount": p.BidCount, "BidderCount": p.BidderCount, "ExtensionInterval": p.ExtensionInterval} {
		if n != nil && *n < 0 {
			t.Errorf("%s = %d", name, *n)
		}
	}
	if p.TimeRemaining != nil && *p.TimeRemaining < 0 {
		t.Errorf("TimeRemaining = %v", *p.TimeRemaining)
	}
	if p.ProductID < 0 {
		t.Errorf("ProductID = %d", p.ProductID)
	}
}

// checkAcyclic walks a decoded value and fails on a cycle. done remembers
// finished containers so that a shared value is walked once.
func checkAcyclic(t *testing.T, v any, onPath, done map[uintptr]bool) {
	var id uintptr
	var children []any
	switch v := v.(type) {
	case map[string]any:
		id = reflect.ValueOf(v).Pointer()
		for _, c := range v {
			children = append(children, c)
		}
	case []any:
		if len(v) == 0 {
			return
		}
		id = reflect.ValueOf(v).Pointer()
		children = v
	case Set:
		children = v
	case Map:
		for _, e := range v {
			children = append(children, e.Key, e.Value)
		}
	case *RejectedPromise:
		children = []any{v.Reason}
	case *ErrorResponse:
		children = []any{v.Data}
	default:
		return
	}
	if id != 0 {
		if onPath[id] {
			t.Fatal("decoded value contains a cycle")
		}
		if done[id] {
			return
		}
		onPath[id] = true
		defer func() { onPath[id], done[id] = false, true }()
	}
	for _, c := range children {
		checkAcyclic(t, c, onPath, done)
	}
}
