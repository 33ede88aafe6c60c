package bidding

import (
	"crypto/sha256"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/users"
)

// Auto-bid statuses of State.Status.
const (
	// StatusIdle: nothing to do yet (auto-bid off, or no price known).
	StatusIdle = "idle"
	// StatusWaiting: sniping, waiting for the window.
	StatusWaiting = "waiting"
	// StatusBidding: a bid is on its way, or the next one is due.
	StatusBidding = "bidding"
	// StatusWinning: the user's bid leads.
	StatusWinning = "winning"
	// StatusOutbid: someone else leads and no bid is planned yet.
	StatusOutbid = "outbid"
	// StatusMaxReached: the next bid is above the user's maximum.
	StatusMaxReached = "max_reached"
	// StatusEnded: the lot is closed.
	StatusEnded = "ended"
	// StatusError: auto-bidding stopped (cookies missing or refused, or
	// bidding off); Message says why and what to do.
	StatusError = users.AutoBidStatusError
)

// State is a user's auto-bid state for one auction, as reported
// (users.AutoBidState). A lot the user monitors under several auction ids
// has one state, reported under each id.
type State = users.AutoBidState

// stateKey is one user's lot. Every rule holds per lot, however many
// auction ids (058040119, 58040119, a URL) the user monitors it under:
// otherwise a second id would be a second bidder, free to outbid the
// user's own winning bid.
type stateKey struct {
	user      string
	productID int64
}

// idKey is an auction id as one user's extension names it.
type idKey struct{ user, auctionID string }

// bidState is everything the engine knows of one user's bidding on one
// lot. Guarded by Engine.mu.
type bidState struct {
	productID int64
	ids       map[string]struct{} // the user's auction ids of the lot, reported under each
	inFlight  bool
	tried     map[int]struct{} // amounts sent (or decided in a dry run): never again
	retryAt   time.Time        // no automatic bid before this, after a server error
	rate      rateWindow
	history   history

	winning bool
	winMax  int // the user's maximum while winning: a higher price is someone else's

	// endedAnswer: Nellis refused this user's bid because the auction
	// ended. It ends this user's bidding only: an answer to one user's
	// cookies says nothing certain of the lot, whose close for everyone
	// comes from the feed.
	endedAnswer bool

	maxBid      float64 // the maximum the reported max-reached is for
	maxReported bool

	// loaded: the persisted record (Options.Ledger) is in the state;
	// revision is the record's revision this node last read or wrote,
	// which its next commit expects.
	loaded   bool
	revision uint64
	// awaitFresh: a bid another run of the engine sent has no recorded
	// answer; no automatic bid until a snapshot fetched with the user's
	// cookies, newer than the change at awaitEpoch/awaitSeq, shows the
	// lot as it is now.
	awaitFresh bool
	awaitEpoch string
	awaitSeq   uint64

	status, message string
	pause           pauseState // while the node bids on nothing (paused.go)
	version         uint64     // grows with every reported change
	reported        uint64     // the version last handed to the Reporter
}

func newBidState(productID int64) *bidState {
	return &bidState{productID: productID, ids: make(map[string]struct{}), tried: make(map[int]struct{}), status: StatusIdle}
}

// setStatus changes the reported status; it reports whether it changed.
func (s *bidState) setStatus(status, message string) bool {
	if s.status == status && s.message == message {
		return false
	}
	s.status, s.message = status, message
	s.version++
	return true
}

func (s *bidState) snapshot(k stateKey, auctionID string) State {
	return State{
		User: k.user, AuctionID: auctionID, ProductID: s.productID,
		Status: s.status, Message: s.message, Winning: s.winning,
		MaxBidReached: s.maxReported, Bids: s.history.list(),
	}
}

// view is the engine's picture of one product: the feed's latest change,
// corrected by what bid answers said since (they arrive before the feed
// catches up). Guarded by Engine.mu.
type view struct {
	change *hub.Change // the feed's latest, nil before the first

	resultPrice float64   // the highest currentAmount a bid answer reported
	resultNext  float64   // minimumNextBid of the answer with resultPrice
	resultClose time.Time // the newest projectNewCloseTime (Nellis's clock)
}

// newer reports whether c is a change the view has not seen.
func (v *view) newer(c *hub.Change) bool {
	return v.change == nil || c.Epoch != v.change.Epoch || c.Seq > v.change.Seq
}

func (v *view) product() *nellis.Product {
	if v.change == nil {
		return &nellis.Product{}
	}
	return &v.change.Product
}

func (v *view) known() bool { return v.change != nil || v.resultPrice > 0 }

func (v *view) price() float64 { return max(v.product().CurrentBid, v.resultPrice) }

// nextBid is the lowest acceptable bid. A live event carries the price but
// not the next bid, so the feed's NextBid may be older than its price; the
// next bid is then a dollar above the price, as Nellis's own fallback.
func (v *view) nextBid() float64 {
	price := v.price()
	next := v.product().NextBid
	if v.resultPrice >= price && v.resultNext > next {
		next = v.resultNext
	}
	if next <= price {
		next = price + 1
	}
	return next
}

// closeTime is the lot's close by Nellis's clock, zero when unknown. A bid
// answer's projection is newer than the feed until the feed moves past it
// (soft close only ever extends).
func (v *view) closeTime() time.Time {
	c := v.product().CloseTime
	if v.resultClose.After(c) {
		c = v.resultClose
	}
	return c
}

func (v *view) extension() time.Duration {
	if s := v.product().ExtensionInterval; s > 0 {
		return time.Duration(s) * time.Second
	}
	return nellis.DefaultExtensionInterval * time.Second
}

// ended reports whether the lot is over at Nellis's time nellisNow.
func (v *view) ended(nellisNow time.Time) bool {
	p := v.product()
	if p.IsClosed || (p.MarketStatus != "" && p.MarketStatus != "open" && p.MarketStatus != "active") {
		return true
	}
	c := v.closeTime()
	return !c.IsZero() && !nellisNow.Before(c)
}

// cookieHash identifies a set of cookies without keeping them.
func cookieHash(cookies string) [sha256.Size]byte { return sha256.Sum256([]byte(cookies)) }
