package users

import "sync/atomic"

// Registry is where an auto-bid engine finds who auto-bids on a lot and
// reports their states: the relay (*wsrelay.Relay) today.
type Registry interface {
	// AutoBidders lists the auctions on productID with autoBid on, in
	// user order; the cookies in it are secrets.
	AutoBidders(productID int64) []AutoBidder
	// ReportAutoBid shows the engine's latest state of a user's auction.
	ReportAutoBid(state AutoBidState)
}

// LateRegistry is a Registry that exists before the one it stands for:
// the engine is made before the relay, which takes the engine as its
// bidder. Until Set, nobody auto-bids and reports are dropped. Safe for
// concurrent use.
type LateRegistry struct {
	r atomic.Pointer[Registry]
}

// Set makes l stand for r.
func (l *LateRegistry) Set(r Registry) { l.r.Store(&r) }

func (l *LateRegistry) get() Registry {
	if r := l.r.Load(); r != nil {
		return *r
	}
	return nil
}

// AutoBidders is the set registry's, nil before Set.
func (l *LateRegistry) AutoBidders(productID int64) []AutoBidder {
	if r := l.get(); r != nil {
		return r.AutoBidders(productID)
	}
	return nil
}

// ReportAutoBid passes the state on, or drops it before Set.
func (l *LateRegistry) ReportAutoBid(state AutoBidState) {
	if r := l.get(); r != nil {
		r.ReportAutoBid(state)
	}
}
