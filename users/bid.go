package users

import "encoding/json"

// Bid is one bid a user asked for.
type Bid struct {
	User      string
	AuctionID string
	ProductID int64
	Amount    float64
	Cookies   string // the user's Nellis cookies; secret
	// Unmonitored: the user does not monitor AuctionID (a bid by product
	// id, as the old backend took them). The bidder holds its rules for the
	// lot as for any bid, but reports no auto-bid state under the id and
	// forgets the lot once no rule needs it.
	Unmonitored bool
}

// BidResult is what placing a Bid came to; the relay maps it onto the
// bidResult message.
type BidResult struct {
	Success   bool
	Data      json.RawMessage // Nellis's answer, passed to the client as data
	Error     string
	ErrorType string
	Retryable bool
}
