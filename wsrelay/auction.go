package wsrelay

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/nellis-edge/gateway/hub"
)

// AuctionConfig is a user's bidding settings for one auction.
type AuctionConfig struct {
	MaxBid          float64 `json:"maxBid"`
	IncrementAmount float64 `json:"incrementAmount"`
	Strategy        string  `json:"strategy"` // auto, sniping, or an older synonym kept as sent
	AutoBid         bool    `json:"autoBid"`
	// SnipeSeconds is this auction's snipe window in whole seconds,
	// [1, 300]; 0 (absent) leaves the engine's default.
	SnipeSeconds int `json:"snipeSeconds,omitempty"`
}

// defaultAuctionConfig applies when startMonitoring carries no config.
var defaultAuctionConfig = AuctionConfig{IncrementAmount: 1, Strategy: "auto"}

func (c *AuctionConfig) apply(p *ConfigPatch) {
	if p == nil {
		return
	}
	if p.MaxBid != nil {
		c.MaxBid = *p.MaxBid
	}
	if p.IncrementAmount != nil {
		c.IncrementAmount = *p.IncrementAmount
	}
	if p.Strategy != nil {
		c.Strategy = *p.Strategy
	}
	if p.AutoBid != nil {
		c.AutoBid = *p.AutoBid
	}
	if p.SnipeSeconds != nil {
		c.SnipeSeconds = *p.SnipeSeconds
	}
}

// Auction is one auction a user monitors, as persisted.
type Auction struct {
	ID        string        `json:"id"`
	ProductID int64         `json:"productId"`
	Title     string        `json:"title"`
	URL       string        `json:"url"`
	ImageURL  *string       `json:"imageUrl"`
	Config    AuctionConfig `json:"config"`
	AddedAt   int64         `json:"addedAt"` // ms since the epoch
}

// monitored is a user's auction plus the encoded user-specific part of its
// state messages, rebuilt only when the user changes the auction, so that a
// change fanned out under the relay's read lock only reads it.
type monitored struct {
	Auction
	owner   *user
	head    []byte      // {"id":…,"title":…,"url":…,"imageUrl":…,"config":{…}  (open object)
	autoBid autoBidView // the engine's latest report; written under the relay's write lock
}

// refreshHead re-encodes the user-specific part; callers hold the relay's
// write lock (or own a not yet shared auction).
func (a *monitored) refreshHead() {
	b, _ := json.Marshal(struct {
		ID       string        `json:"id"`
		Title    string        `json:"title"`
		URL      string        `json:"url"`
		ImageURL *string       `json:"imageUrl"`
		Config   AuctionConfig `json:"config"`
	}{a.ID, a.Title, a.URL, a.ImageURL, a.Config})
	a.head = b[:len(b)-1]
}

// appendAuctionJSON appends the auction object the extension reads: the
// predecessor's fields, data (the hub's encoding spliced in, never
// re-encoded), the panel fields repeated at the top level, and the change's
// seq, epoch, source and receivedAt. c may be nil before the first change.
//
// timeRemaining depends on the clock, so it is computed from closeTime at
// now, the time the message is built. A change is built once per user when
// it is fanned out and shared by that user's sockets; it waits at most one
// write timeout in a queue, and a newer change replaces it there.
//
// ab is the user's auto-bid state, spliced in as autoBid; when the engine
// stopped auto-bidding (status error) the auction's status is "error" and
// error and message say why, which is what the extension's panel shows. A
// closed lot stays "ended": nothing can be bid on it any more.
func appendAuctionJSON(b []byte, head []byte, addedAt int64, c *hub.Change, ab autoBidView, now time.Time) []byte {
	b = append(b, head...)
	if c == nil {
		b = append(b, `,"status":`...)
		b = appendStatus(b, false, ab)
		b = append(b, `,"data":null,"lastUpdate":`...)
		b = strconv.AppendInt(b, addedAt, 10)
		b = ab.appendFields(b, false)
		return append(b, '}')
	}
	ended := productEnded(c)
	b = append(b, `,"status":`...)
	b = appendStatus(b, ended, ab)
	b = appendChangeFields(b, c, now)
	b = ab.appendFields(b, ended)
	return append(b, '}')
}

// changeFields is the part of an auction object that depends on the change
// alone, from data to receivedAt: the bulk of every auctionState, built
// once per change when it is fanned out, whoever the user.
type changeFields struct {
	ended  bool
	fields []byte
}

func newChangeFields(c *hub.Change, now time.Time) changeFields {
	return changeFields{ended: productEnded(c), fields: appendChangeFields(make([]byte, 0, len(c.JSON)+256), c, now)}
}

// appendAuctionWith is appendAuctionJSON for a change whose fields are
// built already.
func appendAuctionWith(b, head []byte, cf changeFields, ab autoBidView) []byte {
	b = append(b, head...)
	b = append(b, `,"status":`...)
	b = appendStatus(b, cf.ended, ab)
	b = append(b, cf.fields...)
	b = ab.appendFields(b, cf.ended)
	return append(b, '}')
}

// appendChangeFields appends data and the fields after it (see
// appendAuctionJSON).
func appendChangeFields(b []byte, c *hub.Change, now time.Time) []byte {
	p := &c.Product
	remaining := int64(p.TimeRemaining(now) / time.Second)
	b = append(b, `,"data":`...)
	b = appendData(b, c.JSON, remaining)
	received := c.ReceivedAt.UnixMilli()
	b = append(b, `,"lastUpdate":`...)
	b = strconv.AppendInt(b, received, 10)
	b = append(b, `,"currentBid":`...)
	b = strconv.AppendFloat(b, p.CurrentBid, 'f', -1, 64)
	b = append(b, `,"nextBid":`...)
	b = strconv.AppendFloat(b, nextBid(p.NextBid, p.CurrentBid), 'f', -1, 64)
	b = append(b, `,"timeRemaining":`...)
	b = strconv.AppendInt(b, remaining, 10)
	b = append(b, `,"bidderCount":`...)
	b = strconv.AppendInt(b, int64(p.BidderCount), 10)
	b = append(b, `,"isClosed":`...)
	b = strconv.AppendBool(b, p.IsClosed)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, c.Seq, 10)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendQuote(b, c.Epoch)
	b = append(b, `,"source":`...)
	b = strconv.AppendQuote(b, string(c.Source))
	b = append(b, `,"receivedAt":`...)
	return strconv.AppendInt(b, received, 10)
}

// appendStatus appends the auction's status: ended, error or monitoring.
func appendStatus(b []byte, ended bool, ab autoBidView) []byte {
	switch {
	case ended:
		return append(b, `"ended"`...)
	case ab.failed():
		return append(b, `"error"`...)
	}
	return append(b, `"monitoring"`...)
}

// appendData splices the product's JSON in and adds timeRemaining (seconds),
// which the product cannot carry because it changes every second.
func appendData(b, product []byte, remaining int64) []byte {
	if len(product) < 2 || product[0] != '{' || product[len(product)-1] != '}' {
		return append(b, "null"...)
	}
	b = append(b, product[:len(product)-1]...)
	if len(product) > 2 {
		b = append(b, ',')
	}
	b = append(b, `"timeRemaining":`...)
	b = strconv.AppendInt(b, remaining, 10)
	return append(b, '}')
}

// nextBid falls back to currentBid + 1, as Nellis does.
func nextBid(next, current float64) float64 {
	if next > 0 {
		return next
	}
	return current + 1
}

// productEnded reports whether the lot is closed or off the market. A past
// close time alone does not end it: a soft close may still extend it.
func productEnded(c *hub.Change) bool {
	p := &c.Product
	return p.IsClosed || (p.MarketStatus != "" && p.MarketStatus != "open" && p.MarketStatus != "active")
}

// auctionStateJSON is the auctionState push. recovered is false when a
// resume could not replay the missed changes and this is the full state.
func auctionStateJSON(head []byte, addedAt int64, c *hub.Change, ab autoBidView, now time.Time, unrecovered bool) []byte {
	return appendAuctionState(make([]byte, 0, auctionStateSize(head, c, ab)), head, addedAt, c, ab, now, unrecovered)
}

// auctionStateFrame is auctionStateJSON built in place as a text frame.
func auctionStateFrame(head []byte, addedAt int64, c *hub.Change, ab autoBidView, now time.Time) []byte {
	return finishText(appendAuctionState(frameBuf(auctionStateSize(head, c, ab)), head, addedAt, c, ab, now, false))
}

// fannedStateFrame is auctionStateFrame for a change being fanned out,
// its fields built once for every user, built in b (from frameBuf, or
// its length frameHeadroom).
func fannedStateFrame(b, head []byte, cf changeFields, ab autoBidView) []byte {
	b = append(b, `{"type":"auctionState","auction":`...)
	b = appendAuctionWith(b, head, cf, ab)
	return finishText(append(b, '}'))
}

// fannedStateSize is what fannedStateFrame needs beyond the headroom.
func fannedStateSize(head []byte, cf changeFields, ab autoBidView) int {
	return len(head) + len(cf.fields) + ab.size() + 64
}

func auctionStateSize(head []byte, c *hub.Change, ab autoBidView) int {
	return len(head) + len(changeJSON(c)) + ab.size() + 320
}

func appendAuctionState(b, head []byte, addedAt int64, c *hub.Change, ab autoBidView, now time.Time, unrecovered bool) []byte {
	b = append(b, `{"type":"auctionState",`...)
	if unrecovered {
		b = append(b, `"recovered":false,`...)
	}
	b = append(b, `"auction":`...)
	b = appendAuctionJSON(b, head, addedAt, c, ab, now)
	return append(b, '}')
}

// auctionUpdateJSON is the push to sockets that subscribed to a product;
// it carries nothing user-specific, so one encoding serves every socket.
func auctionUpdateJSON(productID int64, c *hub.Change, now time.Time, requestID json.RawMessage) []byte {
	return appendAuctionUpdate(make([]byte, 0, len(changeJSON(c))+len(requestID)+96), productID, c, now, requestID)
}

// auctionUpdateFrame is auctionUpdateJSON built in place as a text frame.
func auctionUpdateFrame(productID int64, c *hub.Change, now time.Time) []byte {
	return finishText(appendAuctionUpdate(frameBuf(len(changeJSON(c))+96), productID, c, now, nil))
}

func appendAuctionUpdate(b []byte, productID int64, c *hub.Change, now time.Time, requestID json.RawMessage) []byte {
	b = append(b, `{"type":"auctionUpdate","auctionId":"`...)
	b = strconv.AppendInt(b, productID, 10)
	b = append(b, `","data":`...)
	if c == nil {
		b = append(b, "null"...)
	} else {
		b = appendData(b, c.JSON, int64(c.Product.TimeRemaining(now)/time.Second))
	}
	if len(requestID) > 0 {
		b = append(b, `,"requestId":`...)
		b = append(b, requestID...)
	}
	return append(b, '}')
}

func changeJSON(c *hub.Change) []byte {
	if c == nil {
		return nil
	}
	return c.JSON
}
