package bidding

import (
	"encoding/json"

	"github.com/nellis-edge/gateway/wsrelay"
)

// RelayUsers is the relay as the engine sees it: a Directory and a
// Reporter over a *wsrelay.Relay. Relay returns the relay, or nil while it
// does not exist yet (the module makes it on the first Start, after the
// engine, because the relay takes the engine as its Bidder); then nobody
// auto-bids and reports are dropped.
type RelayUsers struct {
	Relay func() *wsrelay.Relay
}

// AutoBidders lists the relay's auctions on productID with autoBid on.
func (u RelayUsers) AutoBidders(productID int64) []Watcher {
	r := u.Relay()
	if r == nil {
		return nil
	}
	list := r.AutoBidders(productID)
	out := make([]Watcher, 0, len(list))
	for _, a := range list {
		out = append(out, Watcher{
			User: a.User, AuctionID: a.AuctionID, Cookies: a.Cookies, StateKey: a.StateKey,
			Config: AuctionConfig{
				MaxBid: a.Config.MaxBid, Strategy: a.Config.Strategy, AutoBid: a.Config.AutoBid,
				SnipeSeconds: a.Config.SnipeSeconds,
			},
		})
	}
	return out
}

// ReportAutoBid sends the state to the user's sockets as an autoBidState
// message.
func (u RelayUsers) ReportAutoBid(s State) {
	r := u.Relay()
	if r == nil {
		return
	}
	b, err := json.Marshal(s)
	if err != nil {
		return // a State always encodes
	}
	r.PushAutoBidState(s.User, s.AuctionID, b)
}

var (
	_ Directory = RelayUsers{}
	_ Reporter  = RelayUsers{}
)
