package nellissim

import (
	"fmt"
	"strconv"
	"time"
)

// Wire varies how the SSE stream is written, to test a client's tolerance.
// The zero value is the wire as Nellis is known to send it.
type Wire struct {
	// CRLF ends every line with "\r\n" instead of "\n".
	CRLF bool `json:"crlf,omitempty"`
	// Comments precedes every event with a `: nellissim` comment line.
	Comments bool `json:"comments,omitempty"`
	// BOM starts each new stream with a UTF-8 byte order mark.
	BOM bool `json:"bom,omitempty"`
	// PriceKey names the price in bid events: "currentBid" (default),
	// "currentPrice" or "current_bid".
	PriceKey string `json:"priceKey,omitempty"`
	// NumbersAsStrings writes every number in bid and closed events as a
	// JSON string ("125" instead of 125).
	NumbersAsStrings bool `json:"numbersAsStrings,omitempty"`
}

const (
	utf8BOM        = "\uFEFF"
	commentLine    = ": nellissim"
	defaultPrice   = "currentBid"
	bidEventPrefix = "ch_product_bids:"
	closedPrefix   = "ch_product_closed:"
)

func (w Wire) validate() error {
	switch w.PriceKey {
	case "", "currentBid", "currentPrice", "current_bid":
		return nil
	}
	return fmt.Errorf("price key %q is not one of currentBid, currentPrice, current_bid", w.PriceKey)
}

func (w Wire) newline() string {
	if w.CRLF {
		return "\r\n"
	}
	return "\n"
}

// event frames one SSE event: an optional comment, `event:` when named,
// one `data:` line written verbatim, and the blank line that ends it.
// data is not split at newlines, so SendRaw can put malformed bytes on the
// wire.
func (w Wire) event(name, data string) []byte {
	nl := w.newline()
	b := make([]byte, 0, len(data)+len(name)+32)
	if w.Comments {
		b = append(b, commentLine+nl...)
	}
	if name != "" {
		b = append(b, "event: "+name+nl...)
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, nl+nl...)
}

func bidEventName(id int64) string    { return bidEventPrefix + strconv.FormatInt(id, 10) }
func closedEventName(id int64) string { return closedPrefix + strconv.FormatInt(id, 10) }

// bidPayload is the `ch_product_bids:{id}` data after a bid.
func (w Wire) bidPayload(l *lot, now time.Time) string {
	priceKey := w.PriceKey
	if priceKey == "" {
		priceKey = defaultPrice
	}
	return w.payload(object{
		{"productId", l.id},
		{priceKey, l.price},
		{"bidCount", l.bidCount},
		{"lastBidder", l.leader},
		{"bidderCount", len(l.maxes)},
		{"timeRemaining", l.timeRemaining(now)},
		{"closeTime", isoTime(l.closeTime)},
	})
}

// closedPayload is the `ch_product_closed:{id}` data; winner is null for a
// lot nobody bid on.
func (w Wire) closedPayload(l *lot) string {
	var winner any
	if l.leader != "" {
		winner = l.leader
	}
	return w.payload(object{
		{"productId", l.id},
		{"finalBid", l.price},
		{"winner", winner},
		{"closedAt", isoTime(l.closedAt)},
	})
}

func (w Wire) payload(o object) string {
	if w.NumbersAsStrings {
		for i, f := range o {
			switch v := f.value.(type) {
			case int:
				o[i].value = strconv.Itoa(v)
			case int64:
				o[i].value = strconv.FormatInt(v, 10)
			}
		}
	}
	b, err := appendJSON(nil, o)
	if err != nil {
		// Only ints, strings and nil reach here; this cannot happen.
		return "{}"
	}
	return string(b)
}

// connectedData is the first unnamed event of every stream: a session id
// shaped like Nellis's (`<uuid>,0x<hex>-0x<hex>`, the latter Go pointers
// upstream).
func connectedData(uuid string, ptr uint64) string {
	return fmt.Sprintf("connected %s,0x%x-0x%x", uuid, ptr, ptr+0x70)
}
