package loadgen

import (
	"bytes"
	"strconv"
)

// change is what a client needs from an auctionState push.
type change struct {
	productID int64
	price     float64
	source    string
	closed    bool // the lot is closed (top-level isClosed)
}

var (
	stateType   = []byte(`{"type":"auctionState",`)
	auctionID   = []byte(`"auction":{"id":"`)
	topLevelBid = []byte(`,"currentBid":`)
	sourceField = []byte(`,"source":"`)
	closedField = []byte(`,"isClosed":true`)
)

// parseState reads an auctionState push without a full JSON decode: at
// 100,000 messages a second the load generator shares the gateway's two
// cores, and encoding/json would make it the bottleneck. It relies on the
// relay's fixed layout (wsrelay/auction.go): the auction's id first, and
// the top-level currentBid and source after data, so the last occurrence
// of each is the top-level one. ok is false for any other message.
func parseState(msg []byte) (c change, ok bool) {
	id, ok := stateAuctionID(msg)
	if !ok {
		return c, false
	}
	j := bytes.LastIndex(msg, topLevelBid)
	if j < 0 {
		return c, false // no change yet: "data":null
	}
	num := msg[j+len(topLevelBid):]
	if k := bytes.IndexAny(num, ",}"); k >= 0 {
		num = num[:k]
	}
	price, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return c, false
	}
	c = change{productID: id, price: price}
	// The top-level isClosed follows currentBid (data's comes before it).
	c.closed = bytes.Contains(msg[j:], closedField)
	if s := bytes.LastIndex(msg, sourceField); s >= 0 {
		src := msg[s+len(sourceField):]
		if k := bytes.IndexByte(src, '"'); k >= 0 {
			c.source = string(src[:k])
		}
	}
	return c, true
}

// stateAuctionID is the auction id of an auctionState push, with or
// without a change yet; ok is false for any other message.
func stateAuctionID(msg []byte) (id int64, ok bool) {
	if !bytes.HasPrefix(msg, stateType) {
		return 0, false
	}
	i := bytes.Index(msg, auctionID)
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(auctionID):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return 0, false
	}
	id, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return id, err == nil
}
