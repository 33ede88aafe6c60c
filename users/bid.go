package users

import "encoding/json"

// Bid is one bid a user asked for.
type Bid struct {
	User      string
	AuctionID string
	ProductID int64
	Amount    float64
	Cookies   string // the user's Nellis cookies; secret
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
