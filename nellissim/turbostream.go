package nellissim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Special turbo-stream v2 indexes: values that get no slot of their own.
const (
	tsHole        = -1
	tsNaN         = -2
	tsNegInfinity = -3
	tsNegZero     = -4
	tsNull        = -5
	tsPosInfinity = -6
	tsUndefined   = -7
)

// turboStream encodes a value tree as turbo-stream v2, the format Remix
// single fetch and its HTML pages carry: the first line is a flat JSON array
// whose slot 0 is the root; objects are `{"_<key slot>":<value slot>}`,
// arrays list slots, equal primitives share one slot, dates are
// `["D",<ms>]`, and each promise is resolved on a later `P<slot>:` line that
// continues the same slot numbering.
type turboStream struct {
	slots    []string       // each slot's JSON text; "" while a container is being built
	shared   map[string]int // a primitive's JSON literal → its slot
	promises []pendingPromise
}

type pendingPromise struct {
	slot  int
	value any
}

// encodeTurboStream returns the whole turbo-stream text, one line per chunk
// Remix would flush: the root line first, then one line per promise.
func encodeTurboStream(root any) ([]string, error) {
	e := &turboStream{shared: make(map[string]int)}
	idx, err := e.flatten(root)
	if err != nil {
		return nil, err
	}
	var lines []string
	if idx < 0 {
		lines = append(lines, strconv.Itoa(idx)+"\n")
	} else {
		lines = append(lines, "["+strings.Join(e.slots, ",")+"]\n")
	}
	// A promise's value may hold further promises; they queue behind it.
	for len(e.promises) > 0 {
		p := e.promises[0]
		e.promises = e.promises[1:]
		sent := len(e.slots)
		idx, err := e.flatten(p.value)
		if err != nil {
			return nil, err
		}
		switch {
		case idx < 0:
			lines = append(lines, fmt.Sprintf("P%d:%d\n", p.slot, idx))
		case idx == sent:
			lines = append(lines, fmt.Sprintf("P%d:[%s]\n", p.slot, strings.Join(e.slots[sent:], ",")))
		default:
			return nil, fmt.Errorf("promise %d resolves to a value already sent in slot %d", p.slot, idx)
		}
	}
	return lines, nil
}

// flatten gives v its slot (or special index) and, for containers, the slots
// of everything inside, depth first in key order as the reference encoder does.
func (e *turboStream) flatten(v any) (int, error) {
	switch v := v.(type) {
	case nil:
		return tsNull, nil
	case undefined:
		return tsUndefined, nil
	case float64:
		switch {
		case math.IsNaN(v):
			return tsNaN, nil
		case math.IsInf(v, 1):
			return tsPosInfinity, nil
		case math.IsInf(v, -1):
			return tsNegInfinity, nil
		case v == 0 && math.Signbit(v):
			return tsNegZero, nil
		}
		return e.primitive(v)
	case string, bool, int, int64:
		return e.primitive(v)
	case time.Time:
		return e.add(`["D",` + strconv.FormatInt(v.UnixMilli(), 10) + `]`), nil
	case object:
		slot := e.add("")
		var b strings.Builder
		b.WriteByte('{')
		for i, f := range v {
			k, err := e.primitive(f.key)
			if err != nil {
				return 0, err
			}
			val, err := e.flatten(f.value)
			if err != nil {
				return 0, fmt.Errorf("key %q: %w", f.key, err)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"_%d":%d`, k, val)
		}
		b.WriteByte('}')
		e.slots[slot] = b.String()
		return slot, nil
	case []any:
		slot := e.add("")
		parts := make([]string, len(v))
		for i, el := range v {
			idx, err := e.flatten(el)
			if err != nil {
				return 0, fmt.Errorf("element %d: %w", i, err)
			}
			parts[i] = strconv.Itoa(idx)
		}
		e.slots[slot] = "[" + strings.Join(parts, ",") + "]"
		return slot, nil
	case promise:
		slot := len(e.slots)
		e.add(`["P",` + strconv.Itoa(slot) + `]`)
		e.promises = append(e.promises, pendingPromise{slot: slot, value: v.value})
		return slot, nil
	case errorResponse:
		slot := e.add("")
		data, err := e.flatten(v.data)
		if err != nil {
			return 0, err
		}
		status, _ := e.primitive(v.status)
		text, _ := e.primitive(v.statusText)
		e.slots[slot] = fmt.Sprintf(`["ErrorResponse",%d,%d,%d]`, data, status, text)
		return slot, nil
	}
	return 0, fmt.Errorf("turbo-stream: cannot encode %T", v)
}

// primitive returns the shared slot of a string, number or boolean.
func (e *turboStream) primitive(v any) (int, error) {
	lit, err := primitiveJSON(v)
	if err != nil {
		return 0, err
	}
	key := string(lit)
	if slot, ok := e.shared[key]; ok {
		return slot, nil
	}
	slot := e.add(key)
	e.shared[key] = slot
	return slot, nil
}

func (e *turboStream) add(text string) int {
	e.slots = append(e.slots, text)
	return len(e.slots) - 1
}
