package wsrelay

import (
	"fmt"
)

// Fair use: what one user may make the gateway do upstream. Every product
// a user watches, monitored or subscribed on any of their sockets, is a
// feed, a stream and snapshots toward Nellis, so the limits count per
// user, never per socket: more sockets buy no more.

// productLimitLocked says why u may not add productID to what they watch
// ("" when they may): a product they already watch, by any socket, costs
// nothing more. Callers hold r.mu.
//
// A product the user stopped watching counts on for FeedLinger, as long as
// its feed stays open upstream: subscribe/unsubscribe churn through ever
// new products would otherwise keep far more feeds (streams, snapshots)
// open than the limit says.
func (r *Relay) productLimitLocked(u *user, productID int64) string {
	cfg := r.config()
	limit := cfg.MaxProductsPerUser
	products := make(map[int64]struct{}, limit)
	for _, id := range r.dir.UserProducts(u.name) {
		products[id] = struct{}{}
	}
	for id := range u.subs { // the user's sockets' subscriptions, counted: no visit of every socket
		products[id] = struct{}{}
	}
	for _, id := range r.dir.Lingering(u.name, r.now(), cfg.FeedLinger) {
		products[id] = struct{}{}
	}
	if _, ok := products[productID]; ok || len(products) < limit {
		return ""
	}
	return fmt.Sprintf("Product limit reached: at most %d different products per user, monitored and subscribed on all connections together, counting those left in the last %s; stop monitoring or unsubscribe from another first",
		limit, cfg.FeedLinger)
}

// countSubs counts socket c's subscriptions as u's (delta 1) or no more
// (-1), when c signs in as u or leaves. Callers hold r.mu.
func (u *user) countSubs(c *conn, delta int) {
	for id := range c.subs {
		u.countSub(id, delta)
	}
}

// countSub counts one more (delta 1) or one less (-1) of u's sockets
// subscribed to productID. Callers hold r.mu.
func (u *user) countSub(productID int64, delta int) {
	if u.subs[productID] += delta; u.subs[productID] <= 0 {
		delete(u.subs, productID)
	}
}

// leftLocked notes that u stopped watching products (by one socket or
// auction; they may still watch them otherwise), in users.Directory.
// u may be nil. Callers hold r.mu.
func (r *Relay) leftLocked(u *user, products ...int64) {
	if u == nil || len(products) == 0 {
		return
	}
	r.dir.Left(u.name, r.now(), products...)
}

// leftSubsLocked is leftLocked for every product socket c subscribed to.
func (r *Relay) leftSubsLocked(c *conn) {
	for id := range c.subs {
		r.leftLocked(c.user, id)
	}
}

// admitLocked says why socket c may not sign in as u ("" when it may): u
// was removed by a reload meanwhile, or already has MaxSocketsPerUser
// signed-in sockets. The new socket is the one refused, never an old one
// closed: a closed socket's extension reconnects, and two clients of one
// user would then evict each other for ever, while whoever holds a token
// could end the user's working sessions at will. A vanished client's
// socket frees its place once pings stop being answered. Callers hold
// r.mu.
func (r *Relay) admitLocked(c *conn, u *user) string {
	if r.users[u.name] != u {
		return errInvalidToken
	}
	if limit := r.config().MaxSocketsPerUser; c.user != u && len(u.conns) >= limit {
		return fmt.Sprintf("Connection limit reached: at most %d signed-in connections per user; close another tab or browser first", limit)
	}
	return ""
}

// Monitored reports whether a user monitors productID
// (users.Directory.Monitored). The hub polls a product nobody monitors
// (one only subscribe sockets want) in the background, behind the
// products people bid on.
func (r *Relay) Monitored(productID int64) bool { return r.dir.Monitored(productID) }

// prioritizer is implemented by Feeds that poll unmonitored products in
// the background (hub.Hub): told that a user now monitors a product, they
// move its waiting snapshot up.
type prioritizer interface {
	Prioritize(productID int64)
}

// prioritize tells the feeds that a user started monitoring productID.
// Never call it holding r.mu.
func (r *Relay) prioritize(productID int64) {
	if p, ok := r.feeds.(prioritizer); ok {
		p.Prioritize(productID)
	}
}
