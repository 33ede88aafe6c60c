package nellissim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// object is a JSON object whose keys keep their order, so every snapshot and
// every turbo-stream is byte-for-byte reproducible. One value tree feeds both
// the JSON and the turbo-stream encoders.
type object []field

type field struct {
	key   string
	value any
}

// undefined is JavaScript's undefined: turbo-stream writes -7, JSON leaves
// the key out.
type undefined struct{}

// promise is a value Remix streams after the first line (turbo-stream tag
// "P"). In JSON it is written in place.
type promise struct{ value any }

// errorResponse is Remix's ErrorResponse (a thrown Response), as the .data
// route answers a missing product.
type errorResponse struct {
	data       any
	status     int
	statusText string
}

// isoTime formats t the way JavaScript's Date.prototype.toISOString does.
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// MarshalJSON writes the object with its keys in order. Dates become Remix's
// typed JSON `{"__type":"Date","value":"<ISO>"}` as the old `?_data=` route
// sent them.
func (o object) MarshalJSON() ([]byte, error) {
	return appendJSON(nil, o)
}

// appendJSON appends v as JSON. It accepts only the types the simulator
// builds; anything else is an error, never a panic.
func appendJSON(b []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case nil, undefined:
		return append(b, "null"...), nil
	case object:
		b = append(b, '{')
		first := true
		for _, f := range v {
			if _, skip := f.value.(undefined); skip {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, f.key)
			b = append(b, ':')
			if b, err = appendJSON(b, f.value); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case time.Time:
		return appendJSON(b, object{{"__type", "Date"}, {"value", isoTime(v)}})
	case promise:
		return appendJSON(b, v.value)
	case errorResponse:
		return appendJSON(b, object{{"status", v.status}, {"statusText", v.statusText}, {"data", v.data}})
	}
	lit, err := primitiveJSON(v)
	if err != nil {
		return nil, err
	}
	return append(b, lit...), nil
}

// primitiveJSON is the JSON literal of a string, number or boolean.
func primitiveJSON(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendString(nil, v), nil
	case bool:
		return strconv.AppendBool(nil, v), nil
	case int:
		return strconv.AppendInt(nil, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(nil, v, 10), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%v has no JSON form", v)
		}
		// JavaScript prints integral floats without a fraction, as does
		// 'f' with precision -1; prices stay far below 1e21.
		return strconv.AppendFloat(nil, v, 'f', -1, 64), nil
	}
	return nil, fmt.Errorf("cannot encode %T", v)
}

// appendString appends s as a JSON string the way JSON.stringify writes it:
// `<`, `>` and `&` stay literal (HTML escaping is the page's job).
func appendString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a Go string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}
