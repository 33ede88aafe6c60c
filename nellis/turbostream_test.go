package nellis

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// referenceForm renders a decoded value the way the reference dump
// remix-document.decoded-by-turbo-stream-2.4.1.json does: dates as ISO
// strings and the values JSON cannot hold as "<name>".
func referenceForm(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = referenceForm(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = referenceForm(e)
		}
		return out
	case time.Time:
		return v.UTC().Format("2006-01-02T15:04:05.000Z")
	case Undefined:
		return "<undefined>"
	case float64:
		switch {
		case math.IsNaN(v):
			return "<NaN>"
		case math.IsInf(v, 1):
			return "<Infinity>"
		case math.IsInf(v, -1):
			return "<-Infinity>"
		case v == 0 && math.Signbit(v):
			return "<-0>"
		}
	}
	return v
}

// asJSONValue round-trips v through JSON so that it compares with a value
// unmarshalled from a file.
func asJSONValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return out
}

func TestDecodeTurboStreamMatchesReferenceDecoder(t *testing.T) {
	got, err := DecodeTurboStream(readSample(t, "turbostream", "synthetic", "remix-document-stream.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal(readSample(t, "turbostream", "synthetic", "remix-document.decoded-by-turbo-stream-2.4.1.json"), &want); err != nil {
		t.Fatal(err)
	}
	if gotJSON := asJSONValue(t, referenceForm(got)); !reflect.DeepEqual(gotJSON, want) {
		b, _ := json.Marshal(gotJSON)
		t.Errorf("decoded stream differs from turbo-stream 2.4.1's result:\n got %s", b)
	}
}

func TestDecodeTurboStreamKeepsTypes(t *testing.T) {
	got, err := DecodeTurboStream(readSample(t, "turbostream", "synthetic", "remix-document-stream.txt"))
	if err != nil {
		t.Fatal(err)
	}
	product := got.(map[string]any)["loaderData"].(map[string]any)[productRoute].(map[string]any)["product"].(map[string]any)
	if ct, ok := product["closeTime"].(time.Time); !ok || !ct.Equal(time.UnixMilli(1789523580000)) {
		t.Errorf("closeTime = %#v, want a time.Time", product["closeTime"])
	}
	if _, ok := product["openTime"].(Undefined); !ok {
		t.Errorf("openTime = %#v, want Undefined", product["openTime"])
	}
	if product["notes"] != nil {
		t.Errorf("notes = %#v, want nil", product["notes"])
	}
	// Equal values share one slot: location and pickupLocation are the
	// same object as root.shoppingLocation.
	loc, pickup := product["location"].(map[string]any), product["pickupLocation"].(map[string]any)
	if reflect.ValueOf(loc).Pointer() != reflect.ValueOf(pickup).Pointer() {
		t.Error("shared references were copied")
	}
}

func TestDecodeTurboStreamRemixSamples(t *testing.T) {
	dir := []string{"turbostream", "synthetic"}
	decode := func(t *testing.T, name string) any {
		t.Helper()
		v, err := DecodeTurboStream(readSample(t, append(dir, name)...))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	t.Run("redirect", func(t *testing.T) {
		r, ok := decode(t, "remix-2.17.0-data-redirect-202.data.txt").(*Redirect)
		if !ok {
			t.Fatal("root is not a *Redirect")
		}
		if want := (Redirect{Location: "/p/Real-Title/123", Status: 301}); *r != want {
			t.Errorf("redirect = %+v, want %+v", *r, want)
		}
	})
	routeResult := func(t *testing.T, name string) map[string]any {
		t.Helper()
		return decode(t, name).(map[string]any)[productRoute].(map[string]any)
	}
	t.Run("404", func(t *testing.T) {
		e, ok := routeResult(t, "remix-2.17.0-data-404.data.txt")["error"].(*ErrorResponse)
		if !ok || e.Status != 404 || e.Data != "Not Found" {
			t.Errorf("error = %#v, want a 404 *ErrorResponse", e)
		}
	})
	t.Run("500", func(t *testing.T) {
		e, ok := routeResult(t, "remix-2.17.0-data-500.data.txt")["error"].(*RemoteError)
		if !ok || e.Message != "Unexpected Server Error" || e.Name != "Error" {
			t.Errorf("error = %#v, want a *RemoteError", e)
		}
	})
	t.Run("naked loader", func(t *testing.T) {
		product := routeResult(t, "remix-2.17.0-data-naked.data.txt")["data"].(map[string]any)["product"].(map[string]any)
		if _, ok := product["closeTime"].(time.Time); !ok {
			t.Errorf("closeTime = %#v, want a time.Time", product["closeTime"])
		}
		if _, ok := product["notes"].(Undefined); !ok {
			t.Errorf("notes = %#v, want Undefined", product["notes"])
		}
	})
	t.Run("json loader", func(t *testing.T) {
		product := routeResult(t, "remix-2.17.0-data-json.data.txt")["data"].(map[string]any)["product"].(map[string]any)
		if product["closeTime"] != "2026-09-16T01:53:00.000Z" || product["currentPrice"] != 41.0 {
			t.Errorf("product = %#v", product)
		}
	})
}

func TestDecodeTurboStreamValues(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   any
	}{
		{"primitive root", `["hi"]`, "hi"},
		{"special root", `-5`, nil},
		{"specials", `[[-1,-2,-3,-4,-5,-6,-7]]`, []any{"<undefined>", "<NaN>", "<-Infinity>", "<-0>", nil, "<Infinity>", "<undefined>"}},
		{"date from ISO", `[["D","2026-09-16T01:53:00Z"]]`, "2026-09-16T01:53:00.000Z"},
		{"error", `[["E","boom","TypeError"]]`, &RemoteError{Name: "TypeError", Message: "boom"}},
		{"set", `[["S",1,2],"a","b"]`, Set{"a", "b"}},
		{"null-prototype object", `[["N",{"_1":2}],"a",1]`, map[string]any{"a": 1.0}},
		{"promise resolved later", "[{\"_1\":2},\"p\",[\"P\",7]]\nP7:[[4],\"x\"]\n", map[string]any{"p": []any{"x"}}},
		{"promise resolved to an earlier index", "[{\"_1\":2},\"p\",[\"P\",7]]\nP7:1\n", map[string]any{"p": "p"}},
		{"promise never resolved", `[["P",3]]`, UnresolvedPromise{ID: 3}},
		{"promise rejected", "[[\"P\",3]]\nE3:[[\"E\",\"nope\"]]\n", &RejectedPromise{ID: 3, Reason: &RemoteError{Name: "Error", Message: "nope"}}},
		{"previously resolved promise", `[["Z",1],"done"]`, "done"},
		{"windows line ends", "[[\"P\",1]]\r\nP1:[\"ok\"]\r\n", "ok"},
		{"class instance", `[["SingleFetchClassInstance",1],"v"]`, "v"},
		{"fallback", `[["SingleFetchFallback"]]`, "<undefined>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTurboStream([]byte(tt.stream))
			if err != nil {
				t.Fatalf("DecodeTurboStream(%q): %v", tt.stream, err)
			}
			switch want := tt.want.(type) {
			case *RemoteError, *RejectedPromise, Map, Set, UnresolvedPromise:
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %#v, want %#v", got, want)
				}
			default:
				if g, w := asJSONValue(t, referenceForm(got)), asJSONValue(t, want); !reflect.DeepEqual(g, w) {
					t.Errorf("got %#v, want %#v", g, w)
				}
			}
		})
	}
}

func TestDecodeTurboStreamMap(t *testing.T) {
	got, err := DecodeTurboStream([]byte(`[["M",1,2,3,4],"k",{"_1":3},{"_5":4},1,"n"]`))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := got.(Map)
	if !ok || len(m) != 2 {
		t.Fatalf("got %#v, want a Map of 2", got)
	}
	if m[0].Key != "k" || !reflect.DeepEqual(m[0].Value, map[string]any{"k": map[string]any{"n": 1.0}}) {
		t.Errorf("first entry = %#v", m[0])
	}
	// An object key: fine in a Map, impossible in a Go map.
	if !reflect.DeepEqual(m[1].Key, map[string]any{"n": 1.0}) || m[1].Value != 1.0 {
		t.Errorf("second entry = %#v", m[1])
	}
}

func TestDecodeTurboStreamRejects(t *testing.T) {
	// A chain of 100,000 arrays, each holding the next: far deeper than
	// any product, and deep enough to exhaust a careless recursion.
	var deep strings.Builder
	deep.WriteString("[")
	for i := 1; i <= 100000; i++ {
		deep.WriteString("[" + strconv.Itoa(i) + "],")
	}
	deep.WriteString(`"end"]`)
	tests := []struct {
		name, stream, wantMsg string
	}{
		{"empty", "", "empty stream"},
		{"blank lines", "\n\n", "empty stream"},
		{"not json", "{nope", "not JSON"},
		{"turbo-stream v3", string(readSample(t, "turbostream", "synthetic", "turbo-stream-3.2.1-encoding-example.txt")), "line 1: not JSON"},
		{"plain json object", `{"product":{"id":1}}`, "want a flat value array"},
		{"plain nested json in an array", `[{"loaderData":{"x":1}}]`, `object key "loaderData" is not an index reference`},
		{"empty array", `[]`, "empty value list"},
		{"unknown tag", `[["U","https://example.invalid"]]`, `unsupported tag "U"`},
		{"unknown plugin", `[["Function","alert(1)"]]`, `unsupported tag "Function"`},
		{"self reference", `[{"_1":0},"me"]`, "cyclic"},
		{"array containing itself", `[[0]]`, "cyclic"},
		{"mutual reference", `[[1],[0]]`, "cyclic"},
		{"promise resolving to itself", "[[\"P\",1]]\nP1:0\n", "cyclic"},
		{"index out of range", `[[5]]`, "index 5 out of range"},
		{"huge index", `[[1e300]]`, "not an index"},
		{"fractional index", `[[0.5]]`, "not an index"},
		{"special below range", `[[-8]]`, "not an index"},
		{"string as index", `[["x","y"]]`, `unsupported tag "x"`},
		{"key refers to a number", `[{"_1":1},5]`, "want a string"},
		{"duplicate field", `[{"_1":3,"_2":3},"a","a",1]`, `field "a" appears twice`},
		{"odd map", `[["M",1],"k"]`, "odd number"},
		{"date without value", `[["D"]]`, "date without a value"},
		{"bad date", `[["D","soon"]]`, "not ISO-8601"},
		{"bad second line", "[\"x\"]\nhello\n", "line 2"},
		{"bad promise id", "[\"x\"]\nPx:[1]\n", "not a promise line"},
		{"bad promise body", "[\"x\"]\nP1:{\n", "not JSON"},
		{"deep nesting", deep.String(), "nested deeper than 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := DecodeTurboStream([]byte(tt.stream))
			if err == nil {
				t.Fatalf("decoded to %#v, want an error", v)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}
