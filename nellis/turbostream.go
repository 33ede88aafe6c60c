package nellis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// This file decodes turbo-stream v2, the format Remix "single fetch" uses for
// loader data (docs/protocol.md, Snapshots). Only the subset Remix 2.x emits is read;
// anything else is an error, and nothing in the stream is ever executed.
//
// The first line is a flat JSON array: index 0 is the root, objects are
// {"_<keyIndex>": valueIndex}, arrays list indexes, negative indexes are
// special values, and an array whose first element is a string is a tagged
// value. Each later line "P<id>:<json>" (or "E<id>:" for a rejection) settles
// a promise; its array is appended to the same flat value list, so its
// indexes continue where the previous line stopped.
//
// Unlike JavaScript, the decoder rejects cyclic references: a product never
// has one, and a cycle would make every consumer of the plain Go value loop.
// Shared (but acyclic) references are kept shared, as the encoder meant.

// Special indexes of turbo-stream v2.
const (
	tsHole        = -1
	tsNaN         = -2
	tsNegInfinity = -3
	tsNegZero     = -4
	tsNull        = -5
	tsPosInfinity = -6
	tsUndefined   = -7
)

// Limits that keep a hostile stream from costing more than its size.
const (
	// maxTurboDepth bounds the nesting of decoded values, and so the
	// recursion of the decoder.
	maxTurboDepth = 512
	// maxTurboValues bounds the flat value list over all lines.
	maxTurboValues = 1 << 20
)

// DecodeTurboStream decodes a turbo-stream v2 text into plain Go values:
// map[string]any, []any, string, float64, bool, nil, Undefined, time.Time,
// Map, Set, and the settled values of promises. Remix's redirect and error
// payloads become *Redirect, *RemoteError and *ErrorResponse values, which
// are errors, where they stand in the tree; the caller decides what they
// mean. Any unknown tag, bad index or cycle is an error wrapping
// ErrMalformed.
//
// Equal values stay shared, so the result is a DAG whose expansion can be
// exponentially larger than the stream: walk it with a budget (see
// marshalBounded), never with a plain json.Marshal.
func DecodeTurboStream(data []byte) (any, error) {
	v, err := decodeTurboStream(data)
	if err != nil {
		return nil, fmt.Errorf("nellis: %w", err)
	}
	return v, nil
}

// decodeTurboStream is DecodeTurboStream with errors that callers in this
// package wrap with their own context.
func decodeTurboStream(data []byte) (any, error) {
	d, rootLine, err := splitTurboStream(data)
	if err != nil {
		return nil, fmt.Errorf("turbo-stream: %w: %w", ErrMalformed, err)
	}
	root, err := d.unflatten(rootLine)
	if err != nil {
		return nil, fmt.Errorf("turbo-stream: %w: %w", ErrMalformed, err)
	}
	return root, nil
}

// turboDecoder holds the flat values of all lines and what has been
// hydrated from them.
type turboDecoder struct {
	values   []any
	hydrated []any
	state    []uint8 // hydrateNew, hydrateBusy or hydrateDone, per index
	promises map[int64]settledPromise
}

const (
	hydrateNew uint8 = iota
	hydrateBusy
	hydrateDone
)

// settledPromise is a promise line: the index its value starts at, and
// whether it rejected.
type settledPromise struct {
	root     int
	rejected bool
}

// splitTurboStream parses every line. The root line's start index is
// returned; promise lines are appended to the value list and remembered by
// promise id, to be hydrated when a "P" tag asks for them.
func splitTurboStream(data []byte) (*turboDecoder, int, error) {
	d := &turboDecoder{promises: map[int64]settledPromise{}}
	lines := bytes.Split(data, []byte("\n"))
	rootRead := false
	root := 0
	for n, line := range lines {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !rootRead {
			r, err := d.appendLine(line)
			if err != nil {
				return nil, 0, fmt.Errorf("line %d: %w", n+1, err)
			}
			root, rootRead = r, true
			continue
		}
		rejected := false
		switch line[0] {
		case 'P':
		case 'E':
			rejected = true
		default:
			return nil, 0, fmt.Errorf("line %d: starts with %s, want a promise line P<id>: or E<id>:", n+1, excerpt(line[:1]))
		}
		idText, rest, found := bytes.Cut(line[1:], []byte(":"))
		id, err := strconv.ParseInt(string(idText), 10, 64)
		if !found || err != nil || id < 0 {
			return nil, 0, fmt.Errorf("line %d: %s is not a promise line", n+1, excerpt(line))
		}
		r, err := d.appendLine(rest)
		if err != nil {
			return nil, 0, fmt.Errorf("line %d (promise %d): %w", n+1, id, err)
		}
		// The first settlement wins, as a JavaScript promise settles once.
		if _, dup := d.promises[id]; !dup {
			d.promises[id] = settledPromise{root: r, rejected: rejected}
		}
	}
	if !rootRead {
		return nil, 0, errors.New("empty stream")
	}
	d.hydrated = make([]any, len(d.values))
	d.state = make([]uint8, len(d.values))
	return d, root, nil
}

// appendLine adds one line's values and returns the index of its root. A
// line holding a bare number refers to that index (or special value)
// directly, as the encoder writes a primitive root that way.
func (d *turboDecoder) appendLine(line []byte) (int, error) {
	var v any
	if err := json.Unmarshal(line, &v); err != nil {
		return 0, fmt.Errorf("not JSON: %v (%s)", err, excerpt(line))
	}
	switch v := v.(type) {
	case float64:
		idx, ok := indexOf(v)
		if !ok {
			return 0, fmt.Errorf("root %s is not an index", describe(v))
		}
		return idx, nil
	case []any:
		if len(v) == 0 {
			return 0, errors.New("empty value list")
		}
		if len(d.values)+len(v) > maxTurboValues {
			return 0, fmt.Errorf("more than %d values", maxTurboValues)
		}
		start := len(d.values)
		d.values = append(d.values, v...)
		return start, nil
	default:
		return 0, fmt.Errorf("JSON %s, want a flat value array (%s); turbo-stream v3 and plain JSON are not read", jsonKind(v), excerpt(line))
	}
}

// unflatten hydrates the value at a root index, resolving special indexes.
func (d *turboDecoder) unflatten(root int) (any, error) {
	return d.hydrate(root, 0)
}

// indexOf reads a JSON number as a value index.
func indexOf(v any) (int, bool) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < tsUndefined || f >= maxTurboValues {
		return 0, false
	}
	return int(f), true
}

func (d *turboDecoder) hydrate(index, depth int) (any, error) {
	switch index {
	case tsHole, tsUndefined:
		return Undefined{}, nil
	case tsNull:
		return nil, nil
	case tsNaN:
		return math.NaN(), nil
	case tsNegInfinity:
		return math.Inf(-1), nil
	case tsPosInfinity:
		return math.Inf(1), nil
	case tsNegZero:
		return math.Copysign(0, -1), nil
	}
	if index < 0 || index >= len(d.values) {
		return nil, fmt.Errorf("index %d out of range [0,%d)", index, len(d.values))
	}
	switch d.state[index] {
	case hydrateDone:
		return d.hydrated[index], nil
	case hydrateBusy:
		return nil, fmt.Errorf("index %d refers to itself (cyclic value)", index)
	}
	if depth >= maxTurboDepth {
		return nil, fmt.Errorf("values nested deeper than %d", maxTurboDepth)
	}
	d.state[index] = hydrateBusy
	v, err := d.build(d.values[index], depth+1)
	if err != nil {
		return nil, fmt.Errorf("index %d: %w", index, err)
	}
	d.hydrated[index], d.state[index] = v, hydrateDone
	return v, nil
}

// build makes the Go value of one flat entry.
func (d *turboDecoder) build(raw any, depth int) (any, error) {
	switch raw := raw.(type) {
	case nil, string, float64, bool:
		return raw, nil
	case map[string]any:
		return d.buildObject(raw, depth)
	case []any:
		if len(raw) > 0 {
			if tag, ok := raw[0].(string); ok {
				return d.buildTagged(tag, raw[1:], depth)
			}
		}
		return d.buildArray(raw, depth)
	default:
		return nil, fmt.Errorf("unexpected %T", raw)
	}
}

func (d *turboDecoder) buildObject(raw map[string]any, depth int) (map[string]any, error) {
	obj := make(map[string]any, len(raw))
	for ref, valueRef := range raw {
		if len(ref) < 2 || ref[0] != '_' {
			return nil, fmt.Errorf("object key %s is not an index reference _<n>", strconv.Quote(truncate(ref, 40)))
		}
		keyIndex, err := strconv.Atoi(ref[1:])
		if err != nil || keyIndex < 0 {
			return nil, fmt.Errorf("object key %s is not an index reference _<n>", strconv.Quote(truncate(ref, 40)))
		}
		key, err := d.hydrate(keyIndex, depth)
		if err != nil {
			return nil, err
		}
		name, ok := key.(string)
		if !ok {
			return nil, fmt.Errorf("object key at index %d is %s, want a string", keyIndex, describe(key))
		}
		value, err := d.hydrateRef(valueRef, depth)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", strconv.Quote(truncate(name, 40)), err)
		}
		if _, dup := obj[name]; dup {
			// The encoder stores each string once, so two references to
			// the same name cannot come from it; refuse rather than pick
			// one at random.
			return nil, fmt.Errorf("field %s appears twice", strconv.Quote(truncate(name, 40)))
		}
		obj[name] = value
	}
	return obj, nil
}

func (d *turboDecoder) buildArray(raw []any, depth int) ([]any, error) {
	arr := make([]any, len(raw))
	for i, ref := range raw {
		v, err := d.hydrateRef(ref, depth)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		arr[i] = v
	}
	return arr, nil
}

// hydrateRef hydrates a reference read from the stream, which must be a
// whole number.
func (d *turboDecoder) hydrateRef(ref any, depth int) (any, error) {
	idx, ok := indexOf(ref)
	if !ok {
		return nil, fmt.Errorf("reference %s is not an index", describe(ref))
	}
	return d.hydrate(idx, depth)
}

// buildTagged makes the value of ["<tag>", args…]. Arguments are literals
// for the built-in tags D, P and E, and references for everything else,
// exactly as turbo-stream 2.4 writes them.
func (d *turboDecoder) buildTagged(tag string, args []any, depth int) (any, error) {
	switch tag {
	case "D":
		if len(args) < 1 {
			return nil, errors.New("date without a value")
		}
		t, err := parseTimeValue(args[0])
		if err != nil {
			return nil, err
		}
		return t, nil
	case "P", "Z":
		return d.buildPromise(tag, args, depth)
	case "E":
		e := &RemoteError{Name: "Error"}
		if len(args) > 0 {
			e.Message, _ = args[0].(string)
		}
		if len(args) > 1 {
			if name, ok := args[1].(string); ok && name != "" {
				e.Name = name
			}
		}
		return e, nil
	case "M":
		if len(args)%2 != 0 {
			return nil, errors.New("map with an odd number of keys and values")
		}
		m := make(Map, 0, len(args)/2)
		for i := 0; i < len(args); i += 2 {
			k, err := d.hydrateRef(args[i], depth)
			if err != nil {
				return nil, fmt.Errorf("map key %d: %w", i/2, err)
			}
			v, err := d.hydrateRef(args[i+1], depth)
			if err != nil {
				return nil, fmt.Errorf("map value %d: %w", i/2, err)
			}
			m = append(m, MapEntry{Key: k, Value: v})
		}
		return m, nil
	case "S":
		s, err := d.buildArray(args, depth)
		if err != nil {
			return nil, fmt.Errorf("set: %w", err)
		}
		return Set(s), nil
	case "N":
		// An object with a null prototype; in Go, just an object.
		if len(args) < 1 {
			return nil, errors.New("null-prototype object without fields")
		}
		raw, ok := args[0].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("null-prototype object is %s", describe(args[0]))
		}
		return d.buildObject(raw, depth)
	}
	return d.buildRemix(tag, args, depth)
}

// buildPromise resolves ["P", id] to the value its later line settled, and
// ["Z", index] (a promise already settled when encoded) to that index.
func (d *turboDecoder) buildPromise(tag string, args []any, depth int) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("%s tag without an argument", tag)
	}
	if tag == "Z" {
		return d.hydrateRef(args[0], depth)
	}
	f, ok := args[0].(float64)
	if !ok || f != math.Trunc(f) || f < 0 || f > math.MaxInt32 {
		return nil, fmt.Errorf("promise id %s is not a whole number", describe(args[0]))
	}
	id := int64(f)
	settled, ok := d.promises[id]
	if !ok {
		return UnresolvedPromise{ID: id}, nil
	}
	v, err := d.hydrate(settled.root, depth)
	if err != nil {
		return nil, fmt.Errorf("promise %d: %w", id, err)
	}
	if settled.rejected {
		return &RejectedPromise{ID: id, Reason: v}, nil
	}
	return v, nil
}

// buildRemix reads the tags Remix's single-fetch encoder adds.
func (d *turboDecoder) buildRemix(tag string, args []any, depth int) (any, error) {
	switch tag {
	case "SingleFetchRedirect", "SanitizedError", "ErrorResponse", "SingleFetchClassInstance", "SingleFetchFallback":
	default:
		return nil, fmt.Errorf("unsupported tag %s", strconv.Quote(truncate(tag, 40)))
	}
	vals, err := d.buildArray(args, depth)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag, err)
	}
	arg := func(i int) any {
		if i < len(vals) {
			return vals[i]
		}
		return Undefined{}
	}
	switch tag {
	case "SingleFetchRedirect":
		o, ok := arg(0).(map[string]any)
		if !ok {
			return nil, fmt.Errorf("SingleFetchRedirect payload is %s, want an object", describe(arg(0)))
		}
		r := &Redirect{}
		r.Location, _ = o["redirect"].(string)
		if status, ok := numberValue(o["status"]); ok && status == math.Trunc(status) && math.Abs(status) < 1000 {
			r.Status = int(status)
		}
		r.Revalidate, _ = o["revalidate"].(bool)
		r.Reload, _ = o["reload"].(bool)
		r.Replace, _ = o["replace"].(bool)
		return r, nil
	case "SanitizedError":
		e := &RemoteError{Name: "Error"}
		if name, ok := arg(0).(string); ok && name != "" {
			e.Name = name
		}
		e.Message, _ = arg(1).(string)
		return e, nil
	case "ErrorResponse":
		e := &ErrorResponse{Data: arg(0)}
		if status, ok := numberValue(arg(1)); ok && status == math.Trunc(status) && math.Abs(status) < 1000 {
			e.Status = int(status)
		}
		e.StatusText, _ = arg(2).(string)
		return e, nil
	case "SingleFetchClassInstance":
		return arg(0), nil
	default: // SingleFetchFallback
		return Undefined{}, nil
	}
}
