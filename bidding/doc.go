// Package bidding places bids with Nellis for the gateway's users: manual
// bids (it is the relay's wsrelay.Bidder) and the extension's auto-bid
// strategies, driven by the hub's live changes.
//
// Every bid of a user on an auction goes through one Engine, which keeps per
// user and lot (the Nellis product, however many auction ids the user
// monitors it under) the rules a wrong bid would break: at most one bid in
// flight, a rate limit, never the same amount twice, never above the
// user's maximum, never on a closed lot, never while winning. Time is
// Nellis's time: a ServerClock estimates the offset between the gateway's
// clock and Nellis's from HTTP Date headers, the close times bid answers
// project and the time left events report, and the snipe window is
// measured with it.
//
// The package knows nothing of Caddy, nor of the relay: what it exchanges
// with the users' side are values of package users (AuctionConfig, the
// Watcher a users.AutoBidder, the reported State a users.AutoBidState, Bid
// and BidResult). Whoever holds the users plugs in through Directory and
// Reporter (the module passes the relay, a users.Registry), the hub
// through Feed; see Options.
package bidding
