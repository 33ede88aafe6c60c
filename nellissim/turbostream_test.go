package nellissim

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample(t *testing.T, name ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"testdata", "samples", "turbostream", "synthetic"}, name...)...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The encoder writes, byte for byte, what Remix 2.17's own encoder wrote
// for the same loader value.
func TestTurboStreamMatchesRemixEncoder(t *testing.T) {
	closeTime := time.UnixMilli(1789523580000)
	value := object{{productRoute, object{{"data", object{
		{"product", object{{"id", 123}, {"currentPrice", 41}, {"closeTime", closeTime}, {"notes", undefined{}}}},
		{"bidHistory", []any{}},
	}}}}}
	lines, err := encodeTurboStream(value)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(lines, ""), sample(t, "remix-2.17.0-data-naked.data.txt"); got != want {
		t.Errorf("encoded\n%s\nwant\n%s", got, want)
	}

	notFound, err := encodeTurboStream(object{{productRoute, object{{"error", errorResponse{"Not Found", 404, ""}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(notFound, ""), sample(t, "remix-2.17.0-data-404.data.txt"); got != want {
		t.Errorf("404 encoded\n%s\nwant\n%s", got, want)
	}
}

// The test decoder agrees with the reference decoder on a real page stream,
// so decoding the simulator's output with it proves something.
func TestTestDecoderMatchesReference(t *testing.T) {
	got, err := decodeTurboStream(sample(t, "remix-document-stream.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal([]byte(sample(t, "remix-document.decoded-by-turbo-stream-2.4.1.json")), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		t.Errorf("decoded\n%s\nwant\n%s", gj, sample(t, "remix-document.decoded-by-turbo-stream-2.4.1.json"))
	}
}

func TestTurboStreamRoundTrip(t *testing.T) {
	when := time.Date(2026, 9, 16, 1, 53, 0, 0, time.UTC)
	value := object{
		{"title", `Desk (width 22"-36") & <chair>`},
		{"same", `Desk (width 22"-36") & <chair>`},
		{"price", 726.24},
		{"count", 5},
		{"flags", []any{true, false, true}},
		{"when", when},
		{"none", nil},
		{"missing", undefined{}},
		{"specials", []any{math.Inf(1), math.Inf(-1), math.Copysign(0, -1)}},
		{"later", promise{[]any{object{{"id", 2}, {"title", "other"}}}}},
		{"empty", object{}},
	}
	lines, err := encodeTurboStream(value)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "P") {
		t.Fatalf("want a root line and one promise line, got %q", lines)
	}
	if n := strings.Count(lines[0], `"Desk (width`); n != 1 {
		t.Errorf("an equal string must share one slot, found it %d times", n)
	}
	got, err := decodeTurboStream(strings.Join(lines, ""))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"title": `Desk (width 22"-36") & <chair>`, "same": `Desk (width 22"-36") & <chair>`,
		"price": 726.24, "count": 5.0, "flags": []any{true, false, true},
		"when": "2026-09-16T01:53:00.000Z", "none": nil, "missing": "<undefined>",
		"specials": []any{"<Infinity>", "<-Infinity>", "<-0>"},
		"later":    []any{map[string]any{"id": 2.0, "title": "other"}},
		"empty":    map[string]any{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip\n%#v\nwant\n%#v", got, want)
	}
}

func TestTurboStreamRejectsUnknownTypes(t *testing.T) {
	if _, err := encodeTurboStream(object{{"ch", make(chan int)}}); err == nil || !strings.Contains(err.Error(), `key "ch"`) {
		t.Errorf("got %v, want an error naming the key", err)
	}
	if _, err := encodeTurboStream(math.NaN()); err != nil {
		t.Errorf("NaN has a special index, got %v", err)
	}
}
