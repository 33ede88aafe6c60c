package nellissim

import (
	"net/http"
	"time"
)

// BidRequest is one bid a client posted to `POST /api/bids` in a user's
// name, accepted or refused: what a test of "every bid sent once" counts.
// Refused ones are kept because Nellis itself refuses a user's repeated
// amount ("You have already placed a bid with the same price"), so a
// client that sends a bid twice shows as one accepted and one refused.
// Rival bids (EmitBid, the rival bidder) are not requests and not listed.
type BidRequest struct {
	ProductID int64     `json:"productId"`
	User      string    `json:"user"`
	Amount    int       `json:"amount"`
	At        time.Time `json:"at"`
	Accepted  bool      `json:"accepted"`
	// Refusal is Nellis's message for a refused bid.
	Refusal string `json:"refusal,omitempty"`
}

// maxBidLog bounds the log; older requests are forgotten first.
const maxBidLog = 100_000

// logBidLocked records a signed-in bid request and its outcome.
func (s *Simulator) logBidLocked(id int64, user string, amount int, at time.Time, err error) {
	r := BidRequest{ProductID: id, User: user, Amount: amount, At: at.UTC(), Accepted: err == nil}
	if err != nil {
		r.Refusal = err.Error()
	}
	if len(s.bidLog) >= maxBidLog {
		s.bidLog = append(s.bidLog[:0], s.bidLog[1:]...)
	}
	s.bidLog = append(s.bidLog, r)
}

// BidRequests lists the bids users posted to product id (0: every
// product), oldest first.
func (s *Simulator) BidRequests(id int64) []BidRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []BidRequest{}
	for _, r := range s.bidLog {
		if id == 0 || r.ProductID == id {
			out = append(out, r)
		}
	}
	return out
}

// serveBidRequests is `GET /_sim/bids?productId=` (absent or 0: every
// product): BidRequests as JSON.
func (s *Simulator) serveBidRequests(w http.ResponseWriter, r *http.Request) {
	id, err := queryID(r, true)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.BidRequests(id))
}
