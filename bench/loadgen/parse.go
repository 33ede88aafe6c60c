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
	// seq and epoch name the feed's change (0 and "" when the message
	// carries none, as the floor server's): a repeat of one already seen
	// is a duplicate even when the price is unchanged, and a newer one
	// with the same price is a new state of the lot, not a duplicate.
	seq   uint64
	epoch string
}

var (
	stateType   = []byte(`{"type":"auctionState",`)
	auctionID   = []byte(`"auction":{"id":"`)
	topLevelBid = []byte(`,"currentBid":`)
	sourceField = []byte(`,"source":"`)
	seqField    = []byte(`,"seq":`)
	epochField  = []byte(`,"epoch":"`)
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
	c = change{productID: id, price: price, source: lastString(msg, sourceField), epoch: lastString(msg, epochField)}
	if j := bytes.LastIndex(msg, seqField); j >= 0 {
		num := msg[j+len(seqField):]
		if k := bytes.IndexAny(num, ",}"); k >= 0 {
			num = num[:k]
		}
		c.seq, _ = strconv.ParseUint(string(num), 10, 64)
	}
	return c, true
}

// lastString is the string value after the last occurrence of field (which
// ends with the opening quote), or "".
func lastString(msg, field []byte) string {
	s := bytes.LastIndex(msg, field)
	if s < 0 {
		return ""
	}
	v := msg[s+len(field):]
	if k := bytes.IndexByte(v, '"'); k >= 0 {
		return string(v[:k])
	}
	return ""
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
