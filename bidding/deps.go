package bidding

import (
	"context"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/users"
)

// Placer sends one bid to Nellis; *nellis.Client is one. An error means the
// bid was not sent; every answer is classified in the result.
type Placer interface {
	PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (nellis.BidResult, error)
}

// Feed is what the engine needs from the hub; *hub.Hub is one.
type Feed interface {
	// Subscribe registers s for the product's changes until unsubscribe.
	Subscribe(productID int64, s hub.Subscriber) (unsubscribe func())
	// State is the product's latest change, if any.
	State(productID int64) (*hub.Change, bool)
}

// Strategies of AuctionConfig.Strategy.
const (
	StrategyAuto    = users.StrategyAuto
	StrategySniping = users.StrategySniping
	// StrategyManual labels bids a user asked for; as a configured
	// strategy (older extensions) it means no automatic bids.
	StrategyManual = users.StrategyManual
)

// AuctionConfig is a user's setting for one auction, the value the relay
// keeps (users.AuctionConfig); the engine reads MaxBid, Strategy (through
// AutoStrategy), AutoBid and SnipeSeconds.
type AuctionConfig = users.AuctionConfig

// Watcher is one user's auction on a product with autoBid on
// (users.AutoBidder).
type Watcher = users.AutoBidder

// Directory is what the engine needs from the users' registry
// (*users.Directory, through the module): who auto-bids on a product.
// It is called from the engine's goroutines, never while the engine holds
// a lock, and must not call back into the engine.
type Directory interface {
	// AutoBidders lists the watchers of productID whose config has autoBid
	// on. A watcher that is missing is not bid for.
	AutoBidders(productID int64) []Watcher
}

// Reporter receives each user's auto-bid state for an auction whenever it
// changes: the relay (*wsrelay.Relay, through the module) shows it in the
// auction's state. It is called from the engine's goroutines, one call at
// a time, never while the engine holds a lock; it must return quickly and
// must not call back into the engine.
type Reporter interface {
	ReportAutoBid(s State)
}

// Hooks are callbacks for metrics; each may be nil and must be fast.
type Hooks struct {
	// BidResult follows every bid sent, or decided in a dry run: the
	// strategy (manual, auto, sniping) and the result (a nellis.BidOutcome,
	// or "dry_run").
	BidResult func(strategy, result string)
	// BidLatency is a sent bid's round trip to Nellis.
	BidLatency func(strategy string, d time.Duration)
	// MaxReached: an auction's next bid passed the user's maximum (once
	// per maximum).
	MaxReached func(strategy string)
	// IntentConflict: a bid of the strategy (manual, auto, sniping) was
	// not sent because the lot's record had moved on (another node owns
	// the lot, or took it meanwhile).
	IntentConflict func(strategy string)
}

func (h *Hooks) intentConflict(strategy string) {
	if h.IntentConflict != nil {
		h.IntentConflict(strategy)
	}
}

func (h *Hooks) bidResult(strategy, result string) {
	if h.BidResult != nil {
		h.BidResult(strategy, result)
	}
}

func (h *Hooks) bidLatency(strategy string, d time.Duration) {
	if h.BidLatency != nil {
		h.BidLatency(strategy, d)
	}
}

func (h *Hooks) maxReached(strategy string) {
	if h.MaxReached != nil {
		h.MaxReached(strategy)
	}
}
