package nellis

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The helpers in this file read one field of a loosely typed payload. Nellis
// payloads arrive as JSON (decoded with UseNumber) or as turbo-stream (decoded
// to float64), and the same field has been seen as a number, a numeric string
// and a "$41.00" money string, so every reader accepts all of them and says
// precisely what it could not use.

// object is a decoded JSON or turbo-stream object.
type object map[string]any

// first returns the value of the first of keys that is present and neither
// null nor undefined, with the key it was found under.
func (o object) first(keys ...string) (key string, value any, ok bool) {
	for _, k := range keys {
		v, present := o[k]
		if !present || isAbsent(v) {
			continue
		}
		return k, v, true
	}
	return "", nil, false
}

// isAbsent reports whether v stands for "no value": JSON null or JavaScript
// undefined.
func isAbsent(v any) bool {
	if v == nil {
		return true
	}
	_, undefined := v.(Undefined)
	return undefined
}

// fieldError reports an unusable value of one field.
func fieldError(key string, v any, want string) error {
	return fmt.Errorf("%w: field %q: %s is not %s", ErrMalformed, key, describe(v), want)
}

// describe renders a value for an error message, short and without nesting.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case Undefined:
		return "undefined"
	case string:
		return strconv.Quote(truncate(v, 40))
	case json.Number:
		return truncate(v.String(), 40)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case map[string]any, object:
		return "an object"
	case []any:
		return "an array"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// truncate shortens s to at most n bytes, marking the cut, and never splits
// a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// excerpt quotes the start of a payload for an error message. Only public
// payloads (SSE events, product data) are ever quoted.
func excerpt(b []byte) string {
	return strconv.Quote(truncate(string(b), 64))
}

// numberValue reads a finite number from a JSON number, a float64 or a
// numeric string such as "125.00" or "$1,041.00".
func numberValue(v any) (float64, bool) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(v), 64); err != nil {
			return 0, false
		}
	case string:
		s := strings.TrimSpace(v)
		s = strings.TrimPrefix(s, "$")
		s = strings.ReplaceAll(s, ",", "")
		if s == "" {
			return 0, false
		}
		var err error
		if f, err = strconv.ParseFloat(s, 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// MaxAmount is the largest money amount a payload may carry, in dollars.
// No lot on a liquidation site comes near it, and a bid is capped at
// $999,999 (docs/protocol.md, Limits and validation): a larger price is a malformed payload, and
// taken as a price it would freeze the lot, whose price never goes back.
const MaxAmount = 10_000_000

// amountField reads a non-negative money amount up to MaxAmount.
func amountField(key string, v any) (float64, error) {
	f, ok := numberValue(v)
	if !ok {
		return 0, fieldError(key, v, "a number")
	}
	if f < 0 {
		return 0, fieldError(key, v, "a non-negative amount")
	}
	if f > MaxAmount {
		return 0, fieldError(key, v, "a plausible amount (at most $10,000,000)")
	}
	return f, nil
}

// countField reads a non-negative whole number.
func countField(key string, v any) (int, error) {
	f, ok := numberValue(v)
	if !ok {
		return 0, fieldError(key, v, "a number")
	}
	if f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, fieldError(key, v, "a non-negative whole number")
	}
	return int(f), nil
}

// idValue reads a product id: a positive whole number, as a number or a
// numeric string.
func idValue(v any) (int64, bool) {
	if s, ok := v.(string); ok {
		id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return id, err == nil && id > 0
	}
	f, ok := numberValue(v)
	// 2^53 is where float64 stops holding every integer.
	if !ok || f <= 0 || f != math.Trunc(f) || f > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// boolField reads a boolean, also spelled as the string "true" or "false".
func boolField(key string, v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
			return b, nil
		}
	}
	return false, fieldError(key, v, "a boolean")
}

// textField reads a string; a number is accepted and formatted, because
// identifiers such as inventory numbers switch between the two.
func textField(key string, v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case float64:
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'f', -1, 64), nil
		}
	}
	return "", fieldError(key, v, "a string")
}

// timeField reads a date in any form ParseTime accepts.
func timeField(key string, v any) (time.Time, error) {
	t, err := parseTimeValue(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: field %q: %w", ErrMalformed, key, err)
	}
	return t, nil
}

func ptr[T any](v T) *T { return &v }
