package wsrelay

import (
	"encoding/json"
	"slices"
	"strconv"
)

// AutoBidder is one user's monitored auction whose config has autoBid on,
// what an auto-bid engine needs to bid for them.
type AutoBidder struct {
	User      string
	AuctionID string
	Config    AuctionConfig
	// Cookies are the user's synced Nellis cookies, "" when none; secret.
	Cookies string
	// OwnsUserState: CookiesFor picks this user's cookies for the
	// product's snapshots, so a polled change's isWinning is theirs.
	OwnsUserState bool
}

// AutoBidders lists the auctions on productID with autoBid on, in user
// order. The cookies in it are secrets: never log them.
func (r *Relay) AutoBidders(productID int64) []AutoBidder {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var owner *user // the same choice as CookiesFor
	for a := range r.monitors[productID] {
		if u := a.owner; u != nil && u.cookies != "" && (owner == nil || u.name < owner.name) {
			owner = u
		}
	}
	var out []AutoBidder
	for a := range r.monitors[productID] {
		if !a.Config.AutoBid || a.owner == nil {
			continue
		}
		out = append(out, AutoBidder{
			User: a.owner.name, AuctionID: a.ID, Config: a.Config,
			Cookies: a.owner.cookies, OwnsUserState: a.owner == owner,
		})
	}
	slices.SortFunc(out, func(x, y AutoBidder) int {
		if x.User != y.User {
			if x.User < y.User {
				return -1
			}
			return 1
		}
		if x.AuctionID < y.AuctionID {
			return -1
		}
		if x.AuctionID > y.AuctionID {
			return 1
		}
		return 0
	})
	return out
}

// UserProducts lists the products a user monitors, for an engine to look
// at again once the user's cookies change.
func (r *Relay) UserProducts(name string) []int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.users[name]
	if u == nil {
		return nil
	}
	out := make([]int64, 0, len(u.auctions))
	for _, a := range u.auctions {
		if !slices.Contains(out, a.ProductID) {
			out = append(out, a.ProductID)
		}
	}
	slices.Sort(out)
	return out
}

// PushAutoBidState sends every socket of the user an autoBidState message
// for one of their auctions:
//
//	{"type":"autoBidState","auctionId":"…","state":<state>}
//
// state is the engine's report encoded as a JSON object. The message is a
// broadcast, so it never carries a requestId; the extension ignores types
// it does not know. A user without sockets gets nothing: the state is in
// the engine for the next auction listing.
func (r *Relay) PushAutoBidState(name, auctionID string, state json.RawMessage) {
	if len(state) == 0 || !json.Valid(state) {
		return
	}
	b := make([]byte, 0, len(state)+len(auctionID)+48)
	b = append(b, `{"type":"autoBidState","auctionId":`...)
	b = strconv.AppendQuote(b, auctionID)
	b = append(b, `,"state":`...)
	b = append(b, state...)
	b = append(b, '}')
	msg := newShared("autoBidState", b)
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.users[name]
	if u == nil || r.closing {
		return
	}
	if _, ok := u.auctions[auctionID]; !ok {
		return
	}
	for c := range u.conns {
		c.enqueue(msg)
	}
}
