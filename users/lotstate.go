package users

// LotUserState is what a snapshot fetched with one user's cookies said
// about that user on a lot (hub.UserState without the hub's key): in a
// cluster the lot's owner fetches it and sends it to the user's sockets on
// the other nodes, which show it as their own fetch would.
type LotUserState struct {
	ProductID  int64   `json:"productId"`
	IsWinning  bool    `json:"isWinning"`
	IsWatching bool    `json:"isWatching"`
	NextBid    float64 `json:"nextBid,omitempty"` // 0 when unknown
}
