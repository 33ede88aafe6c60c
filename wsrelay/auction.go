package wsrelay

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/users"
	"github.com/nellis-edge/gateway/wsconn"
)

// AuctionConfig is a user's bidding settings for one auction; the users
// package owns it, the engine reads the same value.
type AuctionConfig = users.AuctionConfig

// Auction is one auction a user monitors, as persisted.
type Auction = users.Auction

// defaultAuctionConfig applies when startMonitoring carries no config.
var defaultAuctionConfig = users.DefaultAuctionConfig

// applyPatch sets the fields p carries in c.
func applyPatch(c *AuctionConfig, p *ConfigPatch) {
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

// monitored is the relay's delivery state of one auction a user monitors:
// the encoded user-specific part of its state messages, rebuilt only when
// the user changes the auction (so that a change fanned out under the
// relay's read lock only reads it), the auto-bid state and the user's own
// state of the lot to show, and the lock that orders its states on the
// owner's sockets. The auction itself (title, url, config) is the users
// package's: users.Directory holds it, and head is encoded from it.
type monitored struct {
	// ID, ProductID and AddedAt are the auction's, fixed for its life.
	ID        string
	ProductID int64
	AddedAt   int64 // ms since the epoch
	owner     *user
	head      []byte      // {"id":…,"title":…,"url":…,"imageUrl":…,"config":{…}  (open object); written under the relay's write lock
	autoBid   autoBidView // the engine's latest report; written under the relay's write lock
	// userState is the latest of the owner's own state of the lot that a
	// change brought (observe); written while fanning out, under the
	// relay's read lock, hence atomic.
	userState atomic.Pointer[hub.UserState]
	// sendMu orders the auction's states on its owner's sockets: held from
	// reading the state to sending its frame (deliverTo, push, answerState), so a
	// state read earlier is never sent after one read later, and while a
	// socket's listing reads the state (readListing, signin.go). Relay.mu
	// is taken inside it, never the other way; a listing's listHold.mu
	// inside both.
	sendMu sync.Mutex
	// version counts the changes of what the owner sees of the auction
	// apart from the feed's (head, autoBid); guarded by the relay's lock.
	version uint64
	// pushed is the version the last push sent to every socket of the
	// owner; guarded by sendMu.
	pushed uint64
	// pushMu guards pending, the push of the auction's state to the
	// owner's sockets that waits (push.go); a leaf, taken under sendMu or
	// Relay.mu's read lock.
	pushMu  sync.Mutex
	pending pendingPush
}

// newMonitored is the delivery state of a, a not yet shared auction of
// owner.
func newMonitored(a Auction, owner *user) *monitored {
	m := &monitored{ID: a.ID, ProductID: a.ProductID, AddedAt: a.AddedAt, owner: owner}
	m.setHead(a)
	return m
}

// observe keeps c's user state when it is the owner's, and returns the
// owner's own state of the lot, nil when none is known (the public values
// then apply). Callers hold the relay's lock (read is enough).
func (a *monitored) observe(c *hub.Change) *hub.UserState {
	if a.keeps(c) {
		a.userState.Store(c.User)
		return c.User
	}
	return a.ownState(c)
}

// keeps reports whether observe would keep c's user state for a: c
// carries the state of a's owner. Callers hold the relay's lock (read is
// enough).
func (a *monitored) keeps(c *hub.Change) bool {
	return c != nil && c.User != nil && c.User.Owner == a.owner.stateKey
}

// ownState is the owner's own state of the lot without keeping anything:
// the latest one kept, else c's when it is theirs. State fetched with
// cookies the owner has since replaced is not theirs any more. Callers
// hold the relay's lock (read is enough).
func (a *monitored) ownState(c *hub.Change) *hub.UserState {
	key := a.owner.stateKey
	if us := a.userState.Load(); us != nil && us.Owner == key {
		return us
	}
	if c != nil && c.User != nil && c.User.Owner == key {
		return c.User
	}
	return nil
}

// setHead encodes the user-specific part of a, the auction as the users'
// Directory has it now; callers hold the relay's write lock (or own a not
// yet shared auction).
func (m *monitored) setHead(a Auction) {
	b, _ := json.Marshal(struct {
		ID       string        `json:"id"`
		Title    string        `json:"title"`
		URL      string        `json:"url"`
		ImageURL *string       `json:"imageUrl"`
		Config   AuctionConfig `json:"config"`
	}{a.ID, a.Title, a.URL, a.ImageURL, a.Config})
	if head := b[:len(b)-1]; !bytes.Equal(head, m.head) {
		m.head = head
		m.version++
	}
}

// viewer is what each viewer of a lot sees their own way: the fields of a
// snapshot's userState and what derives from them. Everyone sees the
// public values (publicViewer) but for a user whose own state Nellis gave
// with their cookies (withUser); so the hub's shared JSON leaves them out
// (hub.Change.JSON) and they are added here.
type viewer struct {
	next, minimum     float64
	winning, watching bool
}

// publicViewer is what anyone may see: not winning, not watching, and
// the public next bid (Nellis's fallback, the price plus one, when none is
// known).
func publicViewer(p *nellis.Product) viewer {
	v := viewer{next: nextBid(p.NextBid, p.CurrentBid), minimum: p.MinimumBid}
	if v.minimum <= 0 {
		v.minimum = v.next
	}
	return v
}

// withUser is v for the user whose state us is. Their next bid counts
// only while it is above the public one: a bid since it was fetched makes
// it stale.
func (v viewer) withUser(us *hub.UserState) viewer {
	if us == nil {
		return v
	}
	v.winning, v.watching = us.IsWinning, us.IsWatching
	if us.NextBid > v.next {
		v.next = us.NextBid
		v.minimum = max(v.minimum, us.NextBid)
	}
	return v
}

// appendViewer appends v's fields of data, without braces or commas
// around them.
func appendViewer(b []byte, v viewer) []byte {
	b = append(b, `"nextBid":`...)
	b = strconv.AppendFloat(b, v.next, 'f', -1, 64)
	b = append(b, `,"minimumBid":`...)
	b = strconv.AppendFloat(b, v.minimum, 'f', -1, 64)
	b = append(b, `,"isWinning":`...)
	b = strconv.AppendBool(b, v.winning)
	b = append(b, `,"isWatching":`...)
	return strconv.AppendBool(b, v.watching)
}

// appendAuctionJSON appends the auction object the extension reads: the
// predecessor's fields, data (the hub's encoding spliced in, never
// re-encoded, with the viewer's fields), the panel fields repeated at the
// top level, and the change's seq, epoch, source and receivedAt. c may be
// nil before the first change; us is the user's own state of the lot, nil
// for the public values.
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
func appendAuctionJSON(b []byte, head []byte, addedAt int64, c *hub.Change, ab autoBidView, us *hub.UserState, now time.Time) []byte {
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
	b, _ = appendChangeFields(b, c, publicViewer(&c.Product).withUser(us), now)
	b = ab.appendFields(b, ended)
	return append(b, '}')
}

// changeFields is the part of an auction object that depends on the change
// alone, from data to receivedAt: the bulk of every auctionState, built
// once per change when it is fanned out, whoever the user. fields holds
// the public viewer's values; a user with their own state gets fields
// with theirs put in place of those (appendFor), never a re-encoding.
type changeFields struct {
	ended  bool
	fields []byte
	public viewer
	at     viewerAt
}

// viewerAt is where appendChangeFields put the viewer's values in its
// output: the fields in data (data[0] < 0 when data is null) and the value
// of the top-level nextBid.
type viewerAt struct{ data, next [2]int }

func newChangeFields(c *hub.Change, now time.Time) changeFields {
	cf := changeFields{ended: productEnded(c), public: publicViewer(&c.Product)}
	cf.fields, cf.at = appendChangeFields(make([]byte, 0, len(c.JSON)+320), c, cf.public, now)
	return cf
}

// appendFor appends the fields as the user whose own state is us sees
// them: the public ones for nil.
func (cf *changeFields) appendFor(b []byte, us *hub.UserState) []byte {
	v := cf.public.withUser(us)
	if v == cf.public {
		return append(b, cf.fields...)
	}
	f, at := cf.fields, cf.at
	if at.data[0] >= 0 {
		b = append(b, f[:at.data[0]]...)
		b = appendViewer(b, v)
		b = append(b, f[at.data[1]:at.next[0]]...)
	} else {
		b = append(b, f[:at.next[0]]...)
	}
	b = strconv.AppendFloat(b, v.next, 'f', -1, 64)
	return append(b, f[at.next[1]:]...)
}

// appendAuctionWith is appendAuctionJSON for a change whose fields are
// built already.
func appendAuctionWith(b, head []byte, cf *changeFields, ab autoBidView, us *hub.UserState) []byte {
	b = append(b, head...)
	b = append(b, `,"status":`...)
	b = appendStatus(b, cf.ended, ab)
	b = cf.appendFor(b, us)
	b = ab.appendFields(b, cf.ended)
	return append(b, '}')
}

// appendChangeFields appends data and the fields after it (see
// appendAuctionJSON) as viewer v sees them, and says where v's values are
// in what it appended.
func appendChangeFields(b []byte, c *hub.Change, v viewer, now time.Time) ([]byte, viewerAt) {
	start := len(b)
	var at viewerAt
	p := &c.Product
	remaining := int64(p.TimeRemaining(now) / time.Second)
	b = append(b, `,"data":`...)
	var dataAt [2]int
	b, dataAt = appendData(b, c.JSON, v, remaining)
	at.data = [2]int{-1, -1}
	if dataAt[0] >= 0 {
		at.data = [2]int{dataAt[0] - start, dataAt[1] - start}
	}
	received := c.ReceivedAt.UnixMilli()
	b = append(b, `,"lastUpdate":`...)
	b = strconv.AppendInt(b, received, 10)
	b = append(b, `,"currentBid":`...)
	b = strconv.AppendFloat(b, p.CurrentBid, 'f', -1, 64)
	b = append(b, `,"nextBid":`...)
	at.next[0] = len(b) - start
	b = strconv.AppendFloat(b, v.next, 'f', -1, 64)
	at.next[1] = len(b) - start
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
	return strconv.AppendInt(b, received, 10), at
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

// appendData appends data: the viewer's fields, the product's shared JSON
// spliced in, and timeRemaining (seconds), which the product cannot carry
// because it changes every second. It says where v's fields are in b,
// [-1,-1] when the product is not an object and data is null.
func appendData(b, product []byte, v viewer, remaining int64) ([]byte, [2]int) {
	if len(product) < 2 || product[0] != '{' || product[len(product)-1] != '}' {
		return append(b, "null"...), [2]int{-1, -1}
	}
	b = append(b, '{')
	at := [2]int{len(b), 0}
	b = appendViewer(b, v)
	at[1] = len(b)
	if len(product) > 2 {
		b = append(b, ',')
		b = append(b, product[1:len(product)-1]...)
	}
	b = append(b, `,"timeRemaining":`...)
	b = strconv.AppendInt(b, remaining, 10)
	return append(b, '}'), at
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
func auctionStateJSON(head []byte, addedAt int64, c *hub.Change, ab autoBidView, us *hub.UserState, now time.Time, unrecovered bool) []byte {
	return appendAuctionState(make([]byte, 0, auctionStateSize(head, c, ab)), head, addedAt, c, ab, us, now, unrecovered)
}

// auctionStateFrame is auctionStateJSON built in place as a text frame.
func auctionStateFrame(head []byte, addedAt int64, c *hub.Change, ab autoBidView, us *hub.UserState, now time.Time) *wsconn.Frame {
	f := wsconn.NewFrame(auctionStateSize(head, c, ab))
	f.SetText(appendAuctionState(f.Buffer(), head, addedAt, c, ab, us, now, false))
	return f
}

// frameBuf starts a text frame built in place: room for the header, then
// the payload is appended, then wsconn.FinishText writes the header.
func frameBuf(payloadCap int) []byte {
	return make([]byte, wsconn.Headroom, wsconn.Headroom+payloadCap)
}

// fannedStateFrame is auctionStateFrame for a change being fanned out,
// its fields built once for every user, built in b (from frameBuf, or
// its length wsconn.Headroom).
func fannedStateFrame(b, head []byte, cf *changeFields, ab autoBidView, us *hub.UserState) []byte {
	return wsconn.FinishText(fannedStatePayload(b, head, cf, ab, us))
}

// fannedStatePayload is fannedStateFrame's payload appended to b, not yet
// framed (wsconn.Frame.SetText frames it).
func fannedStatePayload(b, head []byte, cf *changeFields, ab autoBidView, us *hub.UserState) []byte {
	b = append(b, `{"type":"auctionState","auction":`...)
	b = appendAuctionWith(b, head, cf, ab, us)
	return append(b, '}')
}

// fannedStateSize is what fannedStateFrame needs beyond the headroom.
func fannedStateSize(head []byte, cf *changeFields, ab autoBidView, us *hub.UserState) int {
	n := len(head) + len(cf.fields) + ab.size() + 64
	if us != nil {
		n += 64 // the user's next bid may be longer than the public one
	}
	return n
}

func auctionStateSize(head []byte, c *hub.Change, ab autoBidView) int {
	return len(head) + len(changeJSON(c)) + ab.size() + 448
}

func appendAuctionState(b, head []byte, addedAt int64, c *hub.Change, ab autoBidView, us *hub.UserState, now time.Time, unrecovered bool) []byte {
	b = append(b, `{"type":"auctionState",`...)
	if unrecovered {
		b = append(b, `"recovered":false,`...)
	}
	b = append(b, `"auction":`...)
	b = appendAuctionJSON(b, head, addedAt, c, ab, us, now)
	return append(b, '}')
}

// auctionUpdateJSON is the push to sockets that subscribed to a product;
// it carries nothing user-specific (the public values of the viewer's
// fields), so one encoding serves every socket.
func auctionUpdateJSON(productID int64, c *hub.Change, now time.Time, requestID json.RawMessage) []byte {
	return appendAuctionUpdate(make([]byte, 0, len(changeJSON(c))+len(requestID)+224), productID, c, now, requestID)
}

// auctionUpdateFrame is auctionUpdateJSON built in place as a text frame.
func auctionUpdateFrame(productID int64, c *hub.Change, now time.Time) *wsconn.Frame {
	f := wsconn.NewFrame(len(changeJSON(c)) + 224)
	f.SetText(appendAuctionUpdate(f.Buffer(), productID, c, now, nil))
	return f
}

func appendAuctionUpdate(b []byte, productID int64, c *hub.Change, now time.Time, requestID json.RawMessage) []byte {
	b = append(b, `{"type":"auctionUpdate","auctionId":"`...)
	b = strconv.AppendInt(b, productID, 10)
	b = append(b, `","data":`...)
	if c == nil {
		b = append(b, "null"...)
	} else {
		b, _ = appendData(b, c.JSON, publicViewer(&c.Product), int64(c.Product.TimeRemaining(now)/time.Second))
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
