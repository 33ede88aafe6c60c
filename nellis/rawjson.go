package nellis

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
)

// Budgets for re-encoding a decoded value as JSON. Turbo-stream shares equal
// values, so a few hundred bytes can describe a tree with 2^100 nodes; a
// plain json.Marshal would try to write all of them.
const (
	maxRawJSONNodes = 10000
	maxRawJSONDepth = 64
)

var errRawJSONBudget = errors.New("value too large or too deep to re-encode")

// marshalBounded writes a decoded JSON or turbo-stream value as JSON, giving
// up past maxRawJSONNodes values or maxRawJSONDepth levels. Keys are sorted,
// as json.Marshal sorts them. Values JSON cannot hold (NaN, ±Inf, Map, Set)
// are an error; undefined is written as null.
func marshalBounded(v any) ([]byte, error) {
	e := rawJSONEncoder{budget: maxRawJSONNodes}
	if err := e.encode(v, 0); err != nil {
		return nil, err
	}
	return e.buf.Bytes(), nil
}

type rawJSONEncoder struct {
	buf    bytes.Buffer
	budget int
}

func (e *rawJSONEncoder) encode(v any, depth int) error {
	e.budget--
	if e.budget < 0 || depth > maxRawJSONDepth {
		return errRawJSONBudget
	}
	switch v := v.(type) {
	case nil, Undefined:
		e.buf.WriteString("null")
	case bool:
		e.buf.WriteString(strconv.FormatBool(v))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("number not representable in JSON")
		}
		b, _ := json.Marshal(v)
		e.buf.Write(b)
	case json.Number, string, time.Time:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		e.buf.Write(b)
	case []any:
		e.buf.WriteByte('[')
		for i, item := range v {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			if err := e.encode(item, depth+1); err != nil {
				return err
			}
		}
		e.buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		e.buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			b, _ := json.Marshal(k)
			e.buf.Write(b)
			e.buf.WriteByte(':')
			if err := e.encode(v[k], depth+1); err != nil {
				return err
			}
		}
		e.buf.WriteByte('}')
	default:
		return errors.New("value not representable in JSON")
	}
	return nil
}
