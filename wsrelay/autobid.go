package wsrelay

import (
	"slices"

	"github.com/nellis-edge/gateway/users"
)

// AutoBidHooks connect an auto-bid engine to the relay without the relay
// depending on it: the engine's Refresh, Forget and State, as plain funcs.
// Each may be nil. The relay calls them without holding its lock, from the
// goroutine that made the change, so they may call back into the relay
// (AutoBidders, UserProducts); they should return quickly.
type AutoBidHooks struct {
	// Refresh: who auto-bids on the product, or with which config or
	// cookies, may have changed. Called after startMonitoring,
	// updateConfig (WebSocket and REST), stopMonitoring, a cookie sync
	// (for each of the user's products) and once users' saved auctions
	// are loaded.
	Refresh func(productID int64)
	// Forget: the user no longer monitors the auction; its auto-bid state
	// and bid history can go. Called after the Refresh of a stop.
	Forget func(user, auctionID string)
	// State is the user's auto-bid state of an auction, or false when
	// there is none. The relay shows the states the engine reports
	// (ReportAutoBid); it asks State only for an auction it has no report
	// of yet, when it lists or re-sends that auction.
	State func(user, auctionID string) (users.AutoBidState, bool)
}

// SetAutoBid installs an engine's hooks, replacing those of
// Options.AutoBid, and has it look at every monitored product at once, so
// that users loaded before the engine existed are bid for. Call it once
// the engine can see this relay (its AutoBidders).
func (r *Relay) SetAutoBid(h AutoBidHooks) {
	r.autoBid.Store(&h)
	r.mu.RLock()
	ids := make([]int64, 0, len(r.monitors))
	for id := range r.monitors {
		ids = append(ids, id)
	}
	r.mu.RUnlock()
	slices.Sort(ids)
	r.refreshAutoBid(ids...)
}

func (r *Relay) autoBidHooks() *AutoBidHooks { return r.autoBid.Load() }

// refreshAutoBid tells the engine to look at the products again. Never
// call it holding r.mu: the engine reads the relay back.
func (r *Relay) refreshAutoBid(productIDs ...int64) {
	if h := r.autoBidHooks(); h.Refresh != nil {
		for _, id := range productIDs {
			h.Refresh(id)
		}
	}
}

// forgetAutoBid tells the engine a user stopped monitoring an auction.
// Never call it holding r.mu.
func (r *Relay) forgetAutoBid(user, auctionID string) {
	if h := r.autoBidHooks(); h.Forget != nil {
		h.Forget(user, auctionID)
	}
}

// AutoBidder is one user's monitored auction whose config has autoBid on,
// what an auto-bid engine needs to bid for them (users.AutoBidder).
type AutoBidder = users.AutoBidder

// AutoBidders lists the auctions on productID with autoBid on, in user
// order (users.Directory.AutoBidders). The cookies in it are secrets:
// never log them.
func (r *Relay) AutoBidders(productID int64) []AutoBidder { return r.dir.AutoBidders(productID) }

// UserProducts lists the products a user monitors, for an engine to look
// at again once the user's cookies change (users.Directory.UserProducts).
func (r *Relay) UserProducts(name string) []int64 { return r.dir.UserProducts(name) }

// The relay is the users as the hub and the engine see them.
var _ users.Registry = (*Relay)(nil)
