package nellis

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestNumberValueAcceptsEveryNumberSpelling(t *testing.T) {
	tests := []struct {
		in   any
		want float64
	}{
		{125.5, 125.5},
		{json.Number("125.00"), 125},
		{"125.00", 125},
		{" 41 ", 41},
		{"$41.00", 41},
		{"$1,041.50", 1041.5},
	}
	for _, tt := range tests {
		got, ok := numberValue(tt.in)
		if !ok || got != tt.want {
			t.Errorf("numberValue(%#v) = %v, %v; want %v", tt.in, got, ok, tt.want)
		}
	}
	for _, bad := range []any{"", "abc", "NaN", "Inf", json.Number("1e999"), true, nil, []any{}} {
		if got, ok := numberValue(bad); ok {
			t.Errorf("numberValue(%#v) = %v, want failure", bad, got)
		}
	}
}

func TestIDValue(t *testing.T) {
	for in, want := range map[any]int64{float64(58040119): 58040119, "58040119": 58040119, json.Number("123"): 123} {
		if got, ok := idValue(in); !ok || got != want {
			t.Errorf("idValue(%#v) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []any{float64(0), float64(-1), 1.5, "sample-001", "", 1e300, true} {
		if got, ok := idValue(bad); ok {
			t.Errorf("idValue(%#v) = %d, want failure", bad, got)
		}
	}
}

func TestTruncateKeepsUTF8Valid(t *testing.T) {
	s := strings.Repeat("é", 50)
	got := truncate(s, 41) // 41 falls inside a two-byte rune
	if !utf8.ValidString(got) || len(got) > 41+len("…") {
		t.Errorf("truncate gave %q", got)
	}
}
