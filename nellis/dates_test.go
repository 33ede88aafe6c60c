package nellis

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 9, 16, 1, 53, 0, 0, time.UTC)
	tests := []struct {
		name string
		raw  string
		want time.Time
	}{
		{"iso with milliseconds", `"2026-09-16T01:53:00.000Z"`, want},
		{"iso without fraction", `"2026-09-16T01:53:00Z"`, want},
		{"iso with offset", `"2026-09-15T18:53:00-07:00"`, want},
		{"iso without zone is utc", `"2026-09-16T01:53:00"`, want},
		{"remix date object", `{"__type":"Date","value":"2026-09-16T01:53:00.000Z"}`, want},
		{"date object with epoch value", `{"__type":"Date","value":1789523580000}`, want},
		{"date object without type", `{"value":"2026-09-16T01:53:00.000Z"}`, want},
		{"epoch milliseconds", `1789523580000`, want},
		{"epoch milliseconds as string", `"1789523580000"`, want},
		{"observed sample", `{"__type": "Date", "value": "2025-04-25T02:01:48.208Z"}`,
			time.Date(2025, 4, 25, 2, 1, 48, 208e6, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTime(json.RawMessage(tt.raw))
			if err != nil {
				t.Fatalf("ParseTime(%s): %v", tt.raw, err)
			}
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("ParseTime(%s) = %v, want %v in UTC", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParseTimeObservedSampleFile(t *testing.T) {
	got, err := ParseTime(readSample(t, "nellis_date_object.observed-format.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 4, 25, 2, 1, 48, 208e6, time.UTC); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseTimeRejects(t *testing.T) {
	tests := []struct {
		name, raw, wantMsg string
	}{
		{"empty string", `""`, "empty string"},
		{"words", `"next tuesday"`, "not ISO-8601"},
		{"other object type", `{"__type":"Money","value":"1"}`, `__type "Money"`},
		{"date object without value", `{"__type":"Date"}`, "no value"},
		{"nested date object", `{"__type":"Date","value":{"__type":"Date","value":1}}`, "want a string or a number"},
		{"boolean", `true`, "want a string, a number or a date object"},
		{"null", `null`, "want a string, a number or a date object"},
		{"beyond javascript dates", `1e20`, "not a valid epoch"},
		{"not json", `nope`, "not JSON"},
		{"trailing data", `"2026-09-16T01:53:00Z" 1`, "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTime(json.RawMessage(tt.raw))
			if err == nil {
				t.Fatalf("ParseTime(%s) succeeded, want an error", tt.raw)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q does not wrap ErrMalformed", err)
			}
			if !contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}
