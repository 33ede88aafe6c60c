// Package users is what the gateway knows of its users, apart from any
// socket: the per-auction settings they choose (AuctionConfig, Auction),
// the Nellis cookies they sync, sealed with AES-256-GCM at rest
// (SealCookies, OpenCookies), their persisted records behind the UserStore
// interface (StorageStore over a key-value Storage such as Caddy's, with
// the quarantine of records that cannot be read, and Saver, which writes
// changed records from one goroutine), and the values the auto-bid engine
// and the relay exchange: AutoBidder (who auto-bids on a lot), AutoBidState
// (what the engine reports), Bid and BidResult (a bid a user asks for).
// Directory is the configured users: it checks a presented token in
// constant time, keeps each user's cookies with the key their user state
// is tagged with (and sets aside cookies that failed), keeps the auctions
// each user monitors with their configs and when they were added
// (Monitor, UpdateAuction, Unmonitor; monitors.go) and so who monitors
// each product, answers who auto-bids on a product (AutoBidders) and
// which products a user monitors (UserProducts), gives a user's record to
// save (Record) and takes a loaded one (Restore), chooses whose cookies
// fetch a product's snapshot (CookiesFor, the users taking turns), and
// keeps the products a user left for fair use. Users known only from
// signed tokens have an account made at their first sign-in (SignIn) and
// forgotten after the retention period (Stale, Forget); StorageStore.Sweep
// removes their records.
//
// The relay (wsrelay) and the auto-bid engine (bidding) both depend on
// this package; it depends on neither, so the engine asks the Directory,
// not the relay, who auto-bids, and reports their state through the
// Reporter the module gives it (the relay). The relay keeps only what
// delivering needs (each auction's encoded head, auto-bid view and the
// user's own state of the lot, its sockets), changed together with the
// Directory under its own lock.
//
// # Locking
//
// The values here are plain data. Directory, StorageStore and Saver guard
// their own state with a mutex that is a leaf: nothing else is taken while
// it is held and no callback runs under it (UpdateAuction's change func
// only edits the value it is given). The relay calls the Directory holding
// its interestMu, an auction's sendMu and mu (in that order, each
// optional), never the reverse, and never while fanning a change out: a
// delivery reads only the relay's copy. The engine calls AutoBidders
// holding none of its locks. Saver calls its Snapshot (the relay's, which
// is Directory.Record) without any of its locks.
package users
