package nellissim

import (
	"net/http"
	"time"
)

// UserBid is one `POST /api/bids` a signed-in user sent, as the control
// API lists it: who, how much, when, and whether Nellis took it. Tests
// count them per (bidder, amount) to prove a bid left exactly once,
// whichever gateway sent it.
type UserBid struct {
	Bidder   string    `json:"bidder"`
	Amount   int       `json:"amount"`
	At       time.Time `json:"at"`
	Accepted bool      `json:"accepted"`
	// Error is the refusal's message; empty when accepted.
	Error string `json:"error,omitempty"`
}

// maxUserBids bounds each lot's list, so a long benchmark run cannot grow
// it without end; the oldest entries go first.
const maxUserBids = 10_000

// recordUserBidLocked adds a user's bid request to l's list.
func (l *lot) recordUserBidLocked(b UserBid) {
	if len(l.userBids) == maxUserBids {
		l.userBids = append(l.userBids[:0], l.userBids[1:]...)
	}
	l.userBids = append(l.userBids, b)
}

// UserBids lists the bid requests of signed-in users to product id, oldest
// first; rivals emitted through EmitBid or the rival loop are not users'
// requests and are not listed.
func (s *Simulator) UserBids(id int64) ([]UserBid, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.lotLocked(id)
	if err != nil {
		return nil, err
	}
	return append([]UserBid(nil), l.userBids...), nil
}

// serveUserBids is `GET /_sim/user-bids?productId=`.
func (s *Simulator) serveUserBids(w http.ResponseWriter, r *http.Request) {
	id, err := queryID(r, false)
	if err != nil {
		writeControlError(w, err)
		return
	}
	bids, err := s.UserBids(id)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, bids)
}
