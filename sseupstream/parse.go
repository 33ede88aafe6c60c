package sseupstream

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nellis-edge/gateway/nellis"
)

// Event name prefixes of the named Nellis events; the product id follows.
const (
	bidEventPrefix    = "ch_product_bids:"
	closedEventPrefix = "ch_product_closed:"
)

// utf8BOM may open a stream; the event-stream format says to skip it.
const utf8BOM = "\xEF\xBB\xBF"

// frame is one event block's fields, as the WHATWG event-stream
// interpretation defines them.
type frame struct {
	name    string
	data    []byte
	hasData bool // a data field was present, even an empty one
}

// parseFrame interprets one event block (the text between blank lines).
// The library's parser is a private method of its Client, so this is the
// small, spec-exact version: any line end (CR, LF, CRLF), comment lines
// ignored, one optional space after the colon, data lines joined with LF,
// a bare "data" line an empty data field, id and retry ignored (Nellis
// sends neither and offers no resume).
func parseFrame(block []byte) frame {
	var f frame
	// The block holds no blank line (the reader split on those), so the
	// empty pieces FieldsFunc skips are only the insides of CRLFs.
	for _, line := range bytes.FieldsFunc(block, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			f.name = string(value)
		case "data":
			if f.hasData {
				f.data = append(f.data, '\n')
			}
			f.data = append(f.data, value...)
			f.hasData = true
		}
	}
	return f
}

// classify turns a frame into an Event, decoding what the gateway acts on.
// An error means the payload was bad and the event must not be delivered.
func classify(productID int64, f frame) (Event, error) {
	ev := Event{ProductID: productID, Name: f.name, Data: f.data}
	switch {
	case f.name == "" || f.name == "message":
		ev.Name = ""
		text := string(f.data)
		if nellis.IsPing(text) {
			ev.Kind = Ping
		} else if id, ok := nellis.ParseConnected(text); ok {
			ev.Kind = Connected
			ev.SessionID = id
		} else {
			ev.Kind = Other
		}
	case strings.HasPrefix(f.name, bidEventPrefix):
		return decodeNamed(ev, Bid, bidEventPrefix, nellis.DecodeBid)
	case strings.HasPrefix(f.name, closedEventPrefix):
		return decodeNamed(ev, Closed, closedEventPrefix, nellis.DecodeClosed)
	default:
		ev.Kind = Other
	}
	return ev, nil
}

// decodeNamed decodes a bid or close event. An event named for another
// product, or whose payload names another product, is refused: applying it
// would move the wrong lot's price.
func decodeNamed(ev Event, kind Kind, prefix string, decode func([]byte) (nellis.Patch, error)) (Event, error) {
	named, err := strconv.ParseInt(strings.TrimPrefix(ev.Name, prefix), 10, 64)
	if err != nil {
		return ev, errors.New("event name has no numeric product id")
	}
	if named != ev.ProductID {
		return ev, fmt.Errorf("event is for product %d, not %d", named, ev.ProductID)
	}
	patch, err := decode(ev.Data)
	if err != nil {
		return ev, fmt.Errorf("decode %s payload: %w", kind, err)
	}
	if patch.ProductID != 0 && patch.ProductID != ev.ProductID {
		return ev, fmt.Errorf("payload is for product %d, not %d", patch.ProductID, ev.ProductID)
	}
	ev.Kind = kind
	ev.Patch = patch
	return ev, nil
}
