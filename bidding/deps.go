package bidding

import (
	"context"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
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
	StrategyAuto    = "auto"
	StrategySniping = "sniping"
	// StrategyManual labels bids a user asked for; as a configured
	// strategy (older extensions) it means no automatic bids.
	StrategyManual = "manual"
	// strategyIncrement is older extensions' name for auto.
	strategyIncrement = "increment"
)

// AuctionConfig is a user's auto-bid setting for one auction.
type AuctionConfig struct {
	// MaxBid is the most the user will pay; no bid ever exceeds it.
	MaxBid float64
	// Strategy is auto or sniping; increment means auto and manual means
	// no automatic bids, as older extensions send them.
	Strategy string
	// AutoBid switches automatic bidding on for the auction.
	AutoBid bool
	// SnipeSeconds overrides the engine's snipe window; 0 keeps it.
	SnipeSeconds int
}

// strategy is the normalised strategy, "" when none bids automatically.
func (c AuctionConfig) strategy() string {
	if !c.AutoBid {
		return ""
	}
	switch c.Strategy {
	case StrategySniping:
		return StrategySniping
	case StrategyAuto, strategyIncrement, "":
		return StrategyAuto
	}
	return ""
}

// Watcher is one user's auction on a product.
type Watcher struct {
	User      string
	AuctionID string
	Config    AuctionConfig
	// Cookies are the user's synced Nellis cookies; secret.
	Cookies string
	// StateKey tags the user state a snapshot fetched with this user's
	// cookies brings (hub.UserState.Owner): a polled change whose User has
	// it says whether this user is winning.
	StateKey string
}

// Directory is what the engine needs from the relay: who auto-bids on a
// product. It is called from the engine's goroutines, never while the
// engine holds a lock, and must not call back into the engine.
type Directory interface {
	// AutoBidders lists the watchers of productID whose config has autoBid
	// on. A watcher that is missing is not bid for.
	AutoBidders(productID int64) []Watcher
}

// Reporter receives each user's auto-bid state for an auction whenever it
// changes: the relay shows it in the auction's state. It is called from the
// engine's goroutines, one call at a time, never while the engine holds a
// lock; it must return quickly and must not call back into the engine.
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
