package wsrelay

import (
	"encoding/json"
	"strconv"

	"github.com/nellis-edge/gateway/users"
)

// autoBidView is a user's auto-bid state of one auction as the relay shows
// it, encoded once when the engine reports it so that fanning a change out
// only copies bytes. The zero value is "no state known". A view is
// replaced whole, never changed in place, so a copy taken under the
// relay's lock stays valid after it.
type autoBidView struct {
	field   []byte // ,"autoBid":{…}
	failure []byte // ,"error":"…","message":"…" while the engine's status is error
}

// newAutoBidView encodes an engine's state once, as the extension reads
// it; a state without a status is none and is refused.
func newAutoBidView(state users.AutoBidState) (autoBidView, bool) {
	if state.Status == "" {
		return autoBidView{}, false
	}
	enc, err := json.Marshal(state)
	if err != nil {
		return autoBidView{}, false // an AutoBidState always encodes
	}
	v := autoBidView{field: make([]byte, 0, len(enc)+12)}
	v.field = append(v.field, `,"autoBid":`...)
	v.field = append(v.field, enc...)
	if state.Status == users.AutoBidStatusError {
		msg := state.Message
		if msg == "" {
			msg = "auto-bidding stopped"
		}
		v.failure = append(v.failure, `,"error":`...)
		v.failure = strconv.AppendQuote(v.failure, msg)
		v.failure = append(v.failure, `,"message":`...)
		v.failure = strconv.AppendQuote(v.failure, msg)
	}
	return v, true
}

// json is the encoded state alone, as the autoBidState message carries it.
func (v autoBidView) json() []byte { return v.field[len(`,"autoBid":`):] }

func (v autoBidView) known() bool  { return v.field != nil }
func (v autoBidView) failed() bool { return v.failure != nil }
func (v autoBidView) size() int    { return len(v.field) + len(v.failure) }

// appendFields appends autoBid and, unless the lot ended, the error.
func (v autoBidView) appendFields(b []byte, ended bool) []byte {
	b = append(b, v.field...)
	if !ended {
		b = append(b, v.failure...)
	}
	return b
}

// ReportAutoBid records the engine's latest state of a user's auction
// (state.User, state.AuctionID) and sends every socket of the user an
// autoBidState message,
//
//	{"type":"autoBidState","auctionId":"…","state":<state>}
//
// followed by the auction's auctionState, which now carries the state as
// autoBid (the extension reads only auctionState). A state without a
// status is dropped. The messages are broadcasts, so they never carry a
// requestId. A user without sockets gets nothing now; the state shows in
// the next listing and the next change of the auction. The messages are
// pushed as pushState does: reports that arrive while the auction's push
// waits are sent as one, with the latest state.
//
// Reports must arrive in order (the engine makes them one at a time): the
// latest one wins. The relay is the engine's Reporter this way.
//
// In a cluster the state goes to the user's sockets on the other nodes
// too (Peers).
func (r *Relay) ReportAutoBid(state users.AutoBidState) {
	r.applyAutoBid(state)
	if p := r.peersNow(); p != nil {
		p.PublishAutoBid(state)
	}
}

// applyAutoBid records and pushes a user's auto-bid state.
func (r *Relay) applyAutoBid(state users.AutoBidState) {
	name, auctionID := state.User, state.AuctionID
	view, ok := newAutoBidView(state)
	if !ok {
		return
	}
	r.mu.Lock()
	u := r.users[name]
	if u == nil || r.closing {
		r.mu.Unlock()
		return
	}
	a, ok := u.auctions[auctionID]
	if !ok {
		r.mu.Unlock()
		return
	}
	a.autoBid = view
	a.version++
	r.mu.Unlock()
	r.schedulePush(u, a, true, nil, 0)
}

// fillAutoBid returns the auction's view, asking the engine
// (AutoBidHooks.State) when the relay has no report of it yet, for example
// because the engine, told of the auction a moment ago (refreshAutoBid),
// has not reported yet. A report that arrives meanwhile wins over the
// answer. Never call it holding r.mu.
func (r *Relay) fillAutoBid(a *monitored, cur autoBidView) autoBidView {
	h := r.autoBidHooks()
	if cur.known() || h.State == nil {
		return cur
	}
	state, ok := h.State(a.owner.name, a.ID)
	if !ok {
		return cur
	}
	view, ok := newAutoBidView(state)
	if !ok {
		return cur
	}
	r.mu.Lock()
	if !a.autoBid.known() {
		a.autoBid = view
		a.version++
	}
	view = a.autoBid
	r.mu.Unlock()
	return view
}
