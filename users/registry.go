package users

import "sync/atomic"

// Registry is who the users are, as the other parts of the gateway ask:
// the hub for the cookies a snapshot is fetched with, the auto-bid engine
// for who auto-bids on a lot and where its states go. The relay
// (*wsrelay.Relay) is one today: it holds the users with their sockets.
type Registry interface {
	// CookiesFor returns the synced cookies of a user who monitors the
	// product, and the opaque key the user state fetched with them is
	// tagged with; "" for none. The cookies are a secret.
	CookiesFor(productID int64) (owner, cookies string)
	// CookiesFailed sets aside the cookies tagged owner: a snapshot
	// fetched with them failed where an anonymous one worked.
	CookiesFailed(productID int64, owner string)
	// Monitored reports whether a user monitors the product.
	Monitored(productID int64) bool
	// AutoBidders lists the auctions on productID with autoBid on, in
	// user order; the cookies in it are secrets.
	AutoBidders(productID int64) []AutoBidder
	// ReportAutoBid shows the engine's latest state of a user's auction.
	ReportAutoBid(state AutoBidState)
}

// LateRegistry is a Registry that exists before the one it stands for, so
// the module can build the hub and the engine on it at once: the relay
// that holds the users is made on the first start, after the engine, which
// it takes as its bidder. Until Set there are no users: snapshots are
// fetched anonymously, nobody auto-bids, reports are dropped, and every
// product counts as monitored (nothing is polled as background yet). Safe
// for concurrent use.
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

// CookiesFor is the set registry's, none before Set.
func (l *LateRegistry) CookiesFor(productID int64) (owner, cookies string) {
	if r := l.get(); r != nil {
		return r.CookiesFor(productID)
	}
	return "", ""
}

// CookiesFailed passes the failure on; before Set there are no cookies.
func (l *LateRegistry) CookiesFailed(productID int64, owner string) {
	if r := l.get(); r != nil {
		r.CookiesFailed(productID, owner)
	}
}

// Monitored is the set registry's; before Set every product counts.
func (l *LateRegistry) Monitored(productID int64) bool {
	if r := l.get(); r != nil {
		return r.Monitored(productID)
	}
	return true
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
