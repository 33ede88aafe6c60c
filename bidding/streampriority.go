package bidding

import "github.com/nellis-edge/gateway/hub"

// AutoBids tells the hub that this subscriber bids for users: while streams
// toward Nellis are short, a lot someone auto-bids on gets one before lots
// that are only watched (hub.AutoBidder). A worker exists only while
// someone auto-bids on its lot.
func (w *worker) AutoBids() bool { return true }

var _ hub.AutoBidder = (*worker)(nil)
