package nellis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// No bid or close payload has ever been captured (docs/protocol.md, SSE events), so the
// decoders below accept every spelling the predecessor guessed or tolerated.
// The synonym lists are in order of preference: the first present, non-null
// key wins.
var (
	currentBidKeys  = []string{"currentBid", "currentPrice", "current_bid"}
	bidCountKeys    = []string{"bidCount", "bid_count"}
	lastBidderKeys  = []string{"lastBidder", "username", "last_bidder"}
	closeTimeKeys   = []string{"closeTime", "projectNewCloseTime"}
	nextBidKeys     = []string{"nextBid", "minimumNextBid"}
	finalBidKeys    = []string{"finalBid", "final_bid"}
	productIDKeys   = []string{"productId"}
	bidderCountKeys = []string{"bidderCount"}
)

// DecodeBid decodes the data of a ch_product_bids:{id} event. Fields it does
// not find stay nil so that they never blank a known value; unknown fields
// are ignored. Data that is not a JSON object, a known field with an unusable
// value, or an object with no known field at all is an error wrapping
// ErrMalformed or ErrNoData.
func DecodeBid(data []byte) (Patch, error) {
	o, err := decodeEventObject("bid", data)
	if err != nil {
		return Patch{}, err
	}
	var p Patch
	if err := readEventFields(o, &p); err != nil {
		return Patch{}, fmt.Errorf("nellis: bid event %s: %w", excerpt(data), err)
	}
	if key, v, ok := o.first(currentBidKeys...); ok {
		if p.CurrentBid, err = amountPtr(key, v); err != nil {
			return Patch{}, fmt.Errorf("nellis: bid event %s: %w", excerpt(data), err)
		}
	}
	if p.Empty() {
		return Patch{}, fmt.Errorf("nellis: bid event %s: %w: no known field", excerpt(data), ErrNoData)
	}
	return p, nil
}

// DecodeClosed decodes the data of a ch_product_closed:{id} event. The event
// itself is the news, so an empty object is a valid close. The final bid is
// finalBid, else the current bid under any of its names; when known it is
// also the current bid, so a close can never leave a stale price behind.
func DecodeClosed(data []byte) (Patch, error) {
	o, err := decodeEventObject("close", data)
	if err != nil {
		return Patch{}, err
	}
	p := Patch{IsClosed: ptr(true), MarketStatus: ptr("closed")}
	if err := readEventFields(o, &p); err != nil {
		return Patch{}, fmt.Errorf("nellis: close event %s: %w", excerpt(data), err)
	}
	key, v, ok := o.first(finalBidKeys...)
	if !ok {
		key, v, ok = o.first(currentBidKeys...)
	}
	if ok {
		if p.FinalBid, err = amountPtr(key, v); err != nil {
			return Patch{}, fmt.Errorf("nellis: close event %s: %w", excerpt(data), err)
		}
		p.CurrentBid = ptr(*p.FinalBid)
	}
	if key, v, ok := o.first("winner"); ok {
		s, err := textField(key, v)
		if err != nil {
			return Patch{}, fmt.Errorf("nellis: close event %s: %w", excerpt(data), err)
		}
		p.Winner = &s
	}
	if key, v, ok := o.first("closedAt"); ok {
		t, err := timeField(key, v)
		if err != nil {
			return Patch{}, fmt.Errorf("nellis: close event %s: %w", excerpt(data), err)
		}
		p.ClosedAt = &t
	}
	return p, nil
}

// decodeEventObject decodes an event's data as one JSON object, numbers kept
// exact.
func decodeEventObject(kind string, data []byte) (object, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("nellis: %s event: %w: empty data", kind, ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("nellis: %s event %s: %w: not JSON: %v", kind, excerpt(data), ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("nellis: %s event %s: %w: trailing data after the JSON value", kind, excerpt(data), ErrMalformed)
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("nellis: %s event %s: %w: JSON %s, want an object", kind, excerpt(data), ErrMalformed, jsonKind(v))
	}
	return o, nil
}

// readEventFields reads the fields bid and close events share, except the
// price, whose meaning differs between them.
func readEventFields(o object, p *Patch) error {
	var err error
	if key, v, ok := o.first(productIDKeys...); ok {
		id, valid := idValue(v)
		if !valid {
			return fieldError(key, v, "a product id")
		}
		p.ProductID = id
	}
	if key, v, ok := o.first(bidCountKeys...); ok {
		if p.BidCount, err = countPtr(key, v); err != nil {
			return err
		}
	}
	if key, v, ok := o.first(bidderCountKeys...); ok {
		if p.BidderCount, err = countPtr(key, v); err != nil {
			return err
		}
	}
	if key, v, ok := o.first(lastBidderKeys...); ok {
		s, err := textField(key, v)
		if err != nil {
			return err
		}
		p.LastBidder = &s
	}
	if key, v, ok := o.first("timeRemaining"); ok {
		secs, valid := numberValue(v)
		// A lot never runs for more than a year; a larger value is garbage,
		// and would overflow a Duration.
		if !valid || secs < 0 || secs > 366*24*3600 {
			return fieldError(key, v, "a number of seconds left")
		}
		p.TimeRemaining = ptr(time.Duration(math.Round(secs * float64(time.Second))))
	}
	if key, v, ok := o.first(closeTimeKeys...); ok {
		t, err := timeField(key, v)
		if err != nil {
			return err
		}
		p.CloseTime = &t
	}
	if key, v, ok := o.first(nextBidKeys...); ok {
		if p.NextBid, err = amountPtr(key, v); err != nil {
			return err
		}
		// The next acceptable bid is the minimum bid; the extension reads
		// both names.
		p.MinimumBid = ptr(*p.NextBid)
	}
	return nil
}

func amountPtr(key string, v any) (*float64, error) {
	f, err := amountField(key, v)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

func countPtr(key string, v any) (*int, error) {
	n, err := countField(key, v)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// jsonKind names the kind of a decoded JSON value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	default:
		return "object"
	}
}

// ParseConnected reads the "connected <session>" message that opens every
// stream, such as "connected e1177558-…,0xc003538ee0-0xc003538f50". ok is
// false for any other message; sessionID is all text after the first space,
// trimmed, and may be empty if Nellis sent none.
func ParseConnected(data string) (sessionID string, ok bool) {
	data = strings.TrimSpace(data)
	word, rest, _ := strings.Cut(data, " ")
	if word != "connected" {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// IsPing reports whether data is the heartbeat message Nellis sends about
// every second.
func IsPing(data string) bool {
	return strings.TrimSpace(data) == "ping"
}
