package wsrelay

import (
	"context"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/users"
)

// Feeds is what the relay needs from the hub: interest in a product, its
// current state and the recent changes a reconnecting client missed.
type Feeds interface {
	// Subscribe registers s for the product's changes until unsubscribe is
	// called. The relay subscribes a product once, however many users and
	// sockets watch it.
	Subscribe(productID int64, s hub.Subscriber) (unsubscribe func())
	// State is the product's latest change, if any.
	State(productID int64) (*hub.Change, bool)
	// Since lists the changes after (epoch, seq) in order. It reports false
	// when it can no longer tell (another epoch, or history already dropped).
	Since(productID int64, epoch string, seq uint64) ([]*hub.Change, bool)
}

// Storage is the key-value storage users' records persist in
// (users.Storage); Caddy's ctx.Storage() satisfies it.
type Storage = users.Storage

// Bid is one bid a user asked for (users.Bid).
type Bid = users.Bid

// BidResult is what a Bidder reports; it maps onto the bidResult message.
type BidResult = users.BidResult

// Bidder places bids upstream. Without one, every bid is refused with
// "bidding is disabled on this gateway".
type Bidder interface {
	PlaceBid(ctx context.Context, bid Bid) (BidResult, error)
	// BidTimeout is the longest the bidder waits for Nellis's answer to
	// one bid (the `bid_timeout` setting); the relay waits for PlaceBid
	// a little longer (bidWaitMargin).
	BidTimeout() time.Duration
}

// Hooks are callbacks for metrics. Each may be nil; each must be fast and
// safe for concurrent use, as they run on the relay's hot paths.
type Hooks struct {
	ConnOpened      func()
	ConnClosed      func(code int)
	Authenticated   func(user string)
	MessageIn       func(msgType string)
	MessageOut      func(msgType string)
	Coalesced       func()
	Dropped         func(reason string)
	SlowClosed      func()
	DeliveryLatency func(d time.Duration) // from hub.Change.ReceivedAt to the write
	UpgradeRefused  func(status int)
	// RecordQuarantined: a user's stored record could not be read and was
	// set aside (Relay.Quarantined lists them).
	RecordQuarantined func()
	// UsersStored: the retention sweep counted n user records in storage.
	UsersStored func(n int)
}

func (h *Hooks) usersStored(n int) {
	if h.UsersStored != nil {
		h.UsersStored(n)
	}
}

func (h *Hooks) connOpened() {
	if h.ConnOpened != nil {
		h.ConnOpened()
	}
}

func (h *Hooks) connClosed(code int) {
	if h.ConnClosed != nil {
		h.ConnClosed(code)
	}
}

func (h *Hooks) authenticated(user string) {
	if h.Authenticated != nil {
		h.Authenticated(user)
	}
}

func (h *Hooks) messageIn(t string) {
	if h.MessageIn != nil {
		h.MessageIn(t)
	}
}

func (h *Hooks) messageOut(t string) {
	if h.MessageOut != nil {
		h.MessageOut(t)
	}
}

func (h *Hooks) coalesced() {
	if h.Coalesced != nil {
		h.Coalesced()
	}
}

func (h *Hooks) dropped(reason string) {
	if h.Dropped != nil {
		h.Dropped(reason)
	}
}

func (h *Hooks) slowClosed() {
	if h.SlowClosed != nil {
		h.SlowClosed()
	}
}

func (h *Hooks) deliveryLatency(d time.Duration) {
	if h.DeliveryLatency != nil {
		h.DeliveryLatency(d)
	}
}

func (h *Hooks) upgradeRefused(status int) {
	if h.UpgradeRefused != nil {
		h.UpgradeRefused(status)
	}
}

func (h *Hooks) recordQuarantined() {
	if h.RecordQuarantined != nil {
		h.RecordQuarantined()
	}
}
