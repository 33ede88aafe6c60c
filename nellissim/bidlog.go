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
	ProductID int64  `json:"productId"`
	User      string `json:"user"`
	Amount    int    `json:"amount"`
	// Received is when the request arrived, At when it was placed or
	// refused: later by SetBidDelay.
	Received time.Time `json:"received"`
	At       time.Time `json:"at"`
	Accepted bool      `json:"accepted"`
	// Refusal is Nellis's message for a refused bid.
	Refusal string `json:"refusal,omitempty"`
}

// maxBidLog bounds the log; older requests are forgotten first.
const maxBidLog = 100_000

// logBidLocked records a signed-in bid request and its outcome.
func (s *Simulator) logBidLocked(id int64, user string, amount int, received, at time.Time, err error) {
	r := BidRequest{ProductID: id, User: user, Amount: amount, Received: received.UTC(), At: at.UTC(), Accepted: err == nil}
	if err != nil {
		r.Refusal = err.Error()
	}
	if len(s.bidLog) >= maxBidLog {
		s.bidLog = append(s.bidLog[:0], s.bidLog[1:]...)
	}
	s.bidLog = append(s.bidLog, r)
}

// SetBidDelay makes the simulator hold every bid request this long after
// reading it, before placing it and answering: a bid is then in flight
// long enough for a benchmark to kill its sender meanwhile, and it is
// placed all the same, as a request Nellis has received would be. 0 (the
// default) answers at once.
func (s *Simulator) SetBidDelay(d time.Duration) {
	s.bidDelay.Store(int64(max(d, 0)))
}

// holdBid waits out the bid delay, or until the simulator closes.
func (s *Simulator) holdBid() {
	d := time.Duration(s.bidDelay.Load())
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
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
