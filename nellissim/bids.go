package nellissim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// Bid response messages, as Nellis words them.
const (
	msgBidPlaced  = "Bid placed successfully"
	msgOutbid     = "Your bid has been accepted, but another user has a higher maximum bid."
	msgAuthNeeded = "Authentication required"
)

const maxBidBody = 4 << 10

// bidRequest is the body the site posts; Content-Type is text/plain, so the
// body is read as JSON whatever the header says.
type bidRequest struct {
	ProductID int64 `json:"productId"`
	Bid       int   `json:"bid"`
}

// serveBid is `POST /api/bids`.
func (s *Simulator) serveBid(w http.ResponseWriter, r *http.Request) {
	user := userFrom(r)
	var req bidRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBidBody+1))
	switch {
	case err != nil:
		writeMessage(w, http.StatusBadRequest, "Could not read the request body")
		return
	case len(body) > maxBidBody:
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request body too large")
		return
	}
	if err := json.Unmarshal(body, &req); err != nil || req.ProductID <= 0 {
		writeMessage(w, http.StatusBadRequest, "Invalid bid request: productId and bid are required whole numbers")
		return
	}

	s.mu.Lock()
	l, err := s.lotLocked(req.ProductID)
	if err != nil {
		s.mu.Unlock()
		writeMessage(w, http.StatusNotFound, "Product not found")
		return
	}
	l.stats.BidRequests++
	if user == "" {
		s.mu.Unlock()
		writeMessage(w, http.StatusUnauthorized, msgAuthNeeded)
		return
	}
	now := s.cfg.Now()
	out, err := s.bidLocked(l, now, user, req.Bid, false)
	ub := UserBid{Bidder: user, Amount: req.Bid, At: now, Accepted: err == nil}
	if err != nil {
		ub.Error = err.Error()
	}
	l.recordUserBidLocked(ub)
	resp := bidResponse(l, out)
	s.mu.Unlock()

	if err != nil {
		writeMessage(w, bidStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// bidResponse is the success body: the lot's state after the bid.
func bidResponse(l *lot, out bidOutcome) object {
	msg := msgBidPlaced
	if out.outbid {
		msg = msgOutbid
	}
	return object{
		{"message", msg},
		{"data", object{
			{"bidCount", l.bidCount},
			{"currentAmount", l.price},
			{"minimumNextBid", l.nextBid()},
			{"winningBidUserId", userID(l.leader)},
			{"bidderCount", len(l.maxes)},
			{"projectNewCloseTime", l.closeTime},
			{"projectExtended", out.extended},
		}},
	}
}

// bidStatus maps a refusal to the status Nellis answers it with.
func bidStatus(err error) int {
	switch {
	case errors.Is(err, errAuctionEnded):
		return http.StatusGone
	case errors.Is(err, errBidSamePrice):
		return http.StatusConflict
	case errors.Is(err, errNoBidder):
		return http.StatusUnauthorized
	}
	return http.StatusBadRequest
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}
