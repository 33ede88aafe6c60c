// Package nellis holds Nellis Auction's wire formats (SSE payloads, product
// snapshots in every format the site serves, bid responses) and a small HTTP
// client for them. It knows nothing of Caddy or of the gateway's clients.
package nellis

import (
	"encoding/json"
	"time"
)

// Product is the normalised state of one lot as everyone sees it: the
// `data` object the extension reads (docs/protocol.md, The auction object)
// but for what Nellis says about one user (UserState), which a gateway adds
// per user. NextBid and MinimumBid are the public ones (the price plus one,
// or what a live event said). Zero values mean "not known yet"; use Patch
// to change a Product so that unknown fields never blank known ones.
type Product struct {
	ID                int64           `json:"id"`
	Title             string          `json:"title,omitempty"`
	CurrentBid        float64         `json:"currentBid"`
	NextBid           float64         `json:"nextBid,omitempty"`
	MinimumBid        float64         `json:"minimumBid,omitempty"`
	BidCount          int             `json:"bidCount"`
	BidderCount       int             `json:"bidderCount,omitempty"`
	IsClosed          bool            `json:"isClosed"`
	MarketStatus      string          `json:"marketStatus,omitempty"`
	CloseTime         time.Time       `json:"closeTime,omitzero"`
	ExtensionInterval int             `json:"extensionInterval,omitempty"`
	RetailPrice       float64         `json:"retailPrice,omitempty"`
	Location          json.RawMessage `json:"location,omitempty"`
	InventoryNumber   string          `json:"inventoryNumber,omitempty"`
	ImageURL          string          `json:"imageUrl,omitempty"`
	LastBidder        string          `json:"lastBidder,omitempty"`
	FinalBid          float64         `json:"finalBid,omitempty"`
	Winner            string          `json:"winner,omitempty"`
	ClosedAt          time.Time       `json:"closedAt,omitzero"`
}

// DefaultExtensionInterval is the soft-close extension Nellis uses when a
// snapshot does not say (seconds).
const DefaultExtensionInterval = 30

// TimeRemaining is the time left before the lot closes as seen at now, never
// negative. It is zero when the close time is unknown or the lot is closed.
func (p *Product) TimeRemaining(now time.Time) time.Duration {
	if p.IsClosed || p.CloseTime.IsZero() {
		return 0
	}
	if d := p.CloseTime.Sub(now); d > 0 {
		return d
	}
	return 0
}

// Over reports whether the lot is finished: closed, no longer open on the
// market, or past its close time.
func (p *Product) Over(now time.Time) bool {
	if p.IsClosed {
		return true
	}
	if p.MarketStatus != "" && p.MarketStatus != "open" && p.MarketStatus != "active" {
		return true
	}
	return !p.CloseTime.IsZero() && !now.Before(p.CloseTime)
}

// Patch is a partial update to a Product, as one SSE event or one snapshot
// carries it. A nil field is unknown and leaves the product's value alone.
type Patch struct {
	ProductID         int64 // 0 when the payload did not say
	Title             *string
	CurrentBid        *float64
	NextBid           *float64
	MinimumBid        *float64
	BidCount          *int
	BidderCount       *int
	IsClosed          *bool
	MarketStatus      *string
	CloseTime         *time.Time
	TimeRemaining     *time.Duration // relative; resolved against the receive time
	ExtensionInterval *int
	RetailPrice       *float64
	Location          json.RawMessage
	InventoryNumber   *string
	ImageURL          *string
	LastBidder        *string
	FinalBid          *float64
	Winner            *string
	ClosedAt          *time.Time
	// User is what the answer said about the user whose cookies fetched
	// it (a snapshot's userState), nil when it said nothing. It is that
	// user's alone: never merge it into a Product others see.
	User *UserState
}

// UserState is a snapshot's userState: one user's standing on the lot. A
// nil field is unknown.
type UserState struct {
	IsWinning  *bool
	IsWatching *bool
	NextBid    *float64 // the lowest bid Nellis takes from this user
}

// Empty reports whether the patch carries no field at all.
func (p *Patch) Empty() bool {
	return p.Title == nil && p.CurrentBid == nil && p.NextBid == nil && p.MinimumBid == nil &&
		p.BidCount == nil && p.BidderCount == nil && p.User == nil &&
		p.IsClosed == nil && p.MarketStatus == nil && p.CloseTime == nil && p.TimeRemaining == nil &&
		p.ExtensionInterval == nil && p.RetailPrice == nil && p.Location == nil &&
		p.InventoryNumber == nil && p.ImageURL == nil && p.LastBidder == nil && p.FinalBid == nil &&
		p.Winner == nil && p.ClosedAt == nil
}
