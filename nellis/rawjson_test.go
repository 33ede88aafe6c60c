package nellis

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMarshalBounded(t *testing.T) {
	v := map[string]any{
		"b": []any{1.5, "x<", true, nil, Undefined{}},
		"a": json.Number("85009"),
		"t": time.Date(2026, 9, 16, 1, 53, 0, 0, time.UTC),
	}
	got, err := marshalBounded(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":85009,"b":[1.5,"x\u003c",true,null,null],"t":"2026-09-16T01:53:00Z"}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), Map{}, Set{}, []any{struct{}{}}} {
		if b, err := marshalBounded(bad); err == nil {
			t.Errorf("marshalBounded(%#v) = %s, want an error", bad, b)
		}
	}
}

// A turbo-stream of a few hundred bytes can share one value so often that
// its expansion has 2^60 nodes; re-encoding it must stop, not hang.
func TestMarshalBoundedStopsOnSharedExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := 1; i <= 60; i++ {
		n := strconv.Itoa(i)
		b.WriteString("[" + n + "," + n + "],")
	}
	b.WriteString(`"leaf"]`)
	v, err := DecodeTurboStream([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := marshalBounded(v); !errors.Is(err, errRawJSONBudget) {
		t.Errorf("error %v, want the budget error", err)
	}

	// As a product's location, the snapshot still decodes, without it.
	stream := `[{"_1":2},"routes/p.$title.$productId._index",{"_3":4},"data",{"_5":6},"product",{"_7":8,"_9":10,"_11":12},"id",1,"currentPrice",5,"location",[13,13],[14,14],[15,15],[16,16],[17,17],[18,18],[19,19],[20,20],[21,21],[22,22],[23,23],[24,24],[25,25],[26,26],[27,27],[28,28],[29,29],[30,30],[31,31],[32,32],[33,33],"leaf"]`
	snap, err := DecodeSnapshotData([]byte(stream), 1)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Patch.Location != nil || *snap.Patch.CurrentBid != 5 {
		t.Errorf("decoded %s", dumpPatch(snap.Patch))
	}
}
