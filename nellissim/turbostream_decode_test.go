package nellissim

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// decodeTurboStream is a small, test-only turbo-stream v2 decoder, written
// from the format's description and checked against the reference decoder's
// output on a real sample (TestTestDecoderMatchesReference), so that the
// encoder is not only tested against itself. Dates come out as ISO strings
// and undefined, -0 and ±Infinity as the markers the reference output uses.
func decodeTurboStream(text string) (any, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var slots []json.RawMessage
	if err := json.Unmarshal([]byte(lines[0]), &slots); err != nil {
		return nil, fmt.Errorf("root line: %w", err)
	}
	promises := make(map[int]int) // promise slot → slot (or special) of its value
	for _, line := range lines[1:] {
		idText, rest, ok := strings.Cut(strings.TrimPrefix(line, "P"), ":")
		if !ok || !strings.HasPrefix(line, "P") {
			return nil, fmt.Errorf("line %q is not a promise", line)
		}
		id, err := strconv.Atoi(idText)
		if err != nil {
			return nil, fmt.Errorf("promise id %q: %w", idText, err)
		}
		if n, err := strconv.Atoi(rest); err == nil {
			promises[id] = n
			continue
		}
		var more []json.RawMessage
		if err := json.Unmarshal([]byte(rest), &more); err != nil {
			return nil, fmt.Errorf("promise %d: %w", id, err)
		}
		promises[id] = len(slots)
		slots = append(slots, more...)
	}
	d := turboDecoder{slots: slots, promises: promises}
	return d.hydrate(0, 0)
}

type turboDecoder struct {
	slots    []json.RawMessage
	promises map[int]int
}

func (d *turboDecoder) hydrate(i, depth int) (any, error) {
	if depth > 100 {
		return nil, fmt.Errorf("slot %d: nested too deep", i)
	}
	switch i {
	case tsHole, tsUndefined:
		return "<undefined>", nil
	case tsNaN:
		return "<NaN>", nil
	case tsNegInfinity:
		return "<-Infinity>", nil
	case tsNegZero:
		return "<-0>", nil
	case tsNull:
		return nil, nil
	case tsPosInfinity:
		return "<Infinity>", nil
	}
	if i < 0 || i >= len(d.slots) {
		return nil, fmt.Errorf("slot %d out of range", i)
	}
	raw := d.slots[i]
	switch raw[0] {
	case '{':
		var refs map[string]int
		if err := json.Unmarshal(raw, &refs); err != nil {
			return nil, fmt.Errorf("slot %d: %w", i, err)
		}
		out := make(map[string]any, len(refs))
		for k, v := range refs {
			ki, err := strconv.Atoi(strings.TrimPrefix(k, "_"))
			if err != nil || !strings.HasPrefix(k, "_") {
				return nil, fmt.Errorf("slot %d: key %q", i, k)
			}
			key, err := d.hydrate(ki, depth+1)
			if err != nil {
				return nil, err
			}
			ks, ok := key.(string)
			if !ok {
				return nil, fmt.Errorf("slot %d: key slot %d is not a string", i, ki)
			}
			if out[ks], err = d.hydrate(v, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, fmt.Errorf("slot %d: %w", i, err)
		}
		var tag string
		if len(elems) > 0 && json.Unmarshal(elems[0], &tag) == nil {
			return d.tagged(i, tag, elems[1:], depth)
		}
		out := make([]any, len(elems))
		for j, e := range elems {
			ref, err := strconv.Atoi(string(e))
			if err != nil {
				return nil, fmt.Errorf("slot %d element %d: %w", i, j, err)
			}
			if out[j], err = d.hydrate(ref, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("slot %d: %w", i, err)
	}
	return v, nil
}

func (d *turboDecoder) tagged(i int, tag string, args []json.RawMessage, depth int) (any, error) {
	refs := make([]int, len(args))
	for j, a := range args {
		var f float64
		if err := json.Unmarshal(a, &f); err != nil || f != math.Trunc(f) {
			return nil, fmt.Errorf("slot %d: %s argument %d is not an integer", i, tag, j)
		}
		refs[j] = int(f)
	}
	switch {
	case tag == "D" && len(refs) == 1:
		return isoTime(time.UnixMilli(int64(refs[0]))), nil
	case tag == "P" && len(refs) == 1:
		v, ok := d.promises[refs[0]]
		if !ok {
			return nil, fmt.Errorf("slot %d: promise %d never resolved", i, refs[0])
		}
		return d.hydrate(v, depth+1)
	case tag == "ErrorResponse" && len(refs) == 3:
		out := map[string]any{}
		for j, k := range []string{"data", "status", "statusText"} {
			v, err := d.hydrate(refs[j], depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("slot %d: unknown tag %q", i, tag)
}
