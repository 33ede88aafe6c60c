package nellis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// maxEpochMillis is the range of a JavaScript Date: ±100,000,000 days.
const maxEpochMillis = 8.64e15

// isoLayouts are the ISO-8601 spellings Nellis and its JSON serialisers have
// been seen to use, most common first. A time without a zone is UTC, as
// JavaScript's Date.toISOString always writes one and servers log in UTC.
var isoLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02",
}

// ParseTime reads a date in every form Nellis uses: an ISO-8601 string, a
// Remix date object {"__type":"Date","value":<ISO or ms>}, or epoch
// milliseconds as a number or a numeric string. The result is in UTC.
func ParseTime(raw json.RawMessage) (time.Time, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return time.Time{}, fmt.Errorf("nellis: %w: date %s is not JSON: %v", ErrMalformed, excerpt(raw), err)
	}
	if dec.More() {
		return time.Time{}, fmt.Errorf("nellis: %w: date %s has trailing data", ErrMalformed, excerpt(raw))
	}
	t, err := parseTimeValue(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("nellis: %w: %w", ErrMalformed, err)
	}
	return t, nil
}

// parseTimeValue is ParseTime over an already decoded JSON or turbo-stream
// value.
func parseTimeValue(v any) (time.Time, error) {
	switch v := v.(type) {
	case time.Time:
		return v.UTC(), nil
	case map[string]any:
		return parseDateObject(v)
	case object:
		return parseDateObject(v)
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return time.Time{}, errors.New("date is an empty string")
		}
		if looksNumeric(s) {
			return parseEpochMillis(v)
		}
		for _, layout := range isoLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("date %s is not ISO-8601", describe(v))
	case float64, json.Number:
		return parseEpochMillis(v)
	default:
		return time.Time{}, fmt.Errorf("date is %s, want a string, a number or a date object", describe(v))
	}
}

// parseDateObject reads {"__type":"Date","value":…}. The __type may be
// missing (older documentation shows only "value"), but any other type is a
// different thing and is refused. Its value is not read as an object again,
// so a date can never nest.
func parseDateObject(o map[string]any) (time.Time, error) {
	if typ, ok := o["__type"]; ok && typ != "Date" {
		return time.Time{}, fmt.Errorf("date object has __type %s, want \"Date\"", describe(typ))
	}
	value, ok := o["value"]
	if !ok || isAbsent(value) {
		return time.Time{}, errors.New("date object has no value")
	}
	switch value.(type) {
	case string, float64, json.Number, time.Time:
		return parseTimeValue(value)
	}
	return time.Time{}, fmt.Errorf("date object value is %s, want a string or a number", describe(value))
}

func parseEpochMillis(v any) (time.Time, error) {
	ms, ok := numberValue(v)
	if !ok || math.Abs(ms) > maxEpochMillis {
		return time.Time{}, fmt.Errorf("date %s is not a valid epoch time in milliseconds", describe(v))
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

// looksNumeric reports whether s is a plain decimal number, the form of an
// epoch in milliseconds sent as a string.
func looksNumeric(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}
