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
// is tagged with (and sets aside cookies that failed), counts who
// monitors each product, chooses whose cookies fetch a product's snapshot
// (CookiesFor, the users taking turns), and keeps the products a user left
// for fair use. Users known only from signed tokens have an account
// made at their first sign-in (SignIn) and forgotten after the retention
// period (Stale, Forget); StorageStore.Sweep removes their records.
//
// The relay (wsrelay) and the auto-bid engine (bidding) both depend on
// this package; it depends on neither, so the engine no longer needs the
// relay to know its users' settings or to report their state.
//
// # Locking
//
// The values here are plain data. Directory, StorageStore and Saver guard
// their own state with a mutex that is a leaf: nothing else is taken while
// it is held and no callback runs under it. The relay calls the Directory
// holding its interestMu and mu (in that order), never the reverse. Saver calls its Snapshot without
// any of its locks, so the relay may take its own lock in it.
package users
