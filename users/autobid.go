package users

import "time"

// AutoBidder is one user's monitored auction whose config has autoBid on:
// what an auto-bid engine needs to bid for them.
type AutoBidder struct {
	User      string
	AuctionID string
	Config    AuctionConfig
	// Cookies are the user's synced Nellis cookies, "" when none; secret.
	Cookies string
	// StateKey tags the user state a snapshot fetched with these cookies
	// brings (hub.UserState.Owner): a change whose User has this Owner
	// says whether this user is winning.
	StateKey string
}

// AutoBidStatusError is AutoBidState.Status when auto-bidding stopped and
// the user must act (cookies missing or refused, bidding off); Message
// says why and what to do.
const AutoBidStatusError = "error"

// AutoBidState is a user's auto-bid state for one auction, as the engine
// reports it and as the extension reads it (the JSON of autoBid and of
// the autoBidState message). A lot the user monitors under several
// auction ids has one state, reported under each id.
type AutoBidState struct {
	User      string `json:"-"`
	AuctionID string `json:"-"`
	ProductID int64  `json:"productId"`
	// Status is one of the engine's statuses; "" is no state.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	Winning bool   `json:"isWinning"`
	// MaxBidReached stays true until the maximum is raised.
	MaxBidReached bool `json:"maxBidReached"`
	// Bids are the last bids, oldest first.
	Bids []BidRecord `json:"bids"`
}

// BidRecord is one bid in a user's history of an auction.
type BidRecord struct {
	// At is when the bid was decided (local clock).
	At     time.Time `json:"at"`
	Amount int       `json:"amount"`
	// Strategy is manual, auto or sniping.
	Strategy string `json:"strategy"`
	// Result is a Nellis bid outcome, or "dry_run" for a bid not sent.
	Result string `json:"result"`
	// Message is Nellis's message or what went wrong.
	Message string `json:"message,omitempty"`
}
