package users

// Registry is who the users are, as the other parts of the gateway ask:
// the hub for the cookies a snapshot is fetched with, the auto-bid engine
// for who auto-bids on a lot and where its states go. The relay
// (*wsrelay.Relay) is one: it answers the questions of users (cookies,
// who monitors and auto-bids) from its Directory, which keeps the users'
// auctions and configs, and shows the reported states on the sockets.
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
