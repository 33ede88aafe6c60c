package wsrelay

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"sync"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/wsconn"
)

// Listing a user's auctions to one socket (the monitoredAuctions message
// of a sign-in, the answer to getMonitoredAuctions) while their changes
// keep flowing. The socket joins its user's sockets first, so that no
// change after the listing is missed; but what the fan-out (deliverTo) and
// the pushes (push.go) send it from then on is held (listHold) until the
// listing is queued, so that the sign-in's answer comes first and no
// state older than the listing's follows it:
//
//   - The listing reads each auction's state under the auction's sendMu,
//     one auction at a time (no lock another auction's delivery needs is
//     held longer than a push holds it), and notes there how much was
//     held for the socket so far: what was held of the auction before
//     that point is older than, or the same as, what the listing shows
//     (a feed hands a change to the relay only after State returns it,
//     and one change after the other), so it is dropped; what was held
//     after is newer, so it is sent after the listing.
//   - Held messages are coalesced as the socket's queue coalesces them
//     (wsconn.Key, the newest state of an auction in the older one's
//     place), so a sign-in that waits (a cluster feed joining) holds at
//     most a few messages per auction.
//   - The listing is a fence (wsconn.Message.Fence): a state sent after
//     it never takes the place of one queued before it.
//
// The check on the hot path is one atomic load per socket (sendToAll).

// listHold is what the relay sent a socket while it lists the user's
// auctions to it; conn.hold points to it until the listing is queued.
type listHold struct {
	r  *Relay
	u  *user // whose auctions the listing shows; another user's are dropped
	mu sync.Mutex
	// open: the listing is queued and held messages sent; senders send
	// to the socket again.
	open bool
	held []heldMessage
	// at is where each message whose place a newer one of its kind takes
	// is in held (heldKey).
	at map[heldKey]int
	// marks is, for each auction listed, how many messages were held when
	// the listing read its state: its messages before that are older.
	// math.MaxInt for an auction no longer monitored when listed.
	marks map[*monitored]int
}

type heldMessage struct {
	a *monitored // whose state m is; nil for a message of no auction (auctionUpdate)
	m wsconn.Message
}

// heldKey says which held message a newer one replaces: the same key
// (an auction's state, a subscribed product's update), or an auction's
// autoBidState, which the queue does not coalesce (it is sent with each
// push) but which a socket holding its messages needs only the newest
// of, as it needs one state.
type heldKey struct {
	a       *monitored
	key     wsconn.Key
	autoBid bool
}

func newListHold(r *Relay, u *user) *listHold {
	return &listHold{r: r, u: u, at: make(map[heldKey]int), marks: make(map[*monitored]int)}
}

// hold keeps m, the state of a (nil for none), for the socket, unless the
// listing is queued already: then it reports false and the caller sends
// m itself. It takes over the caller's reference to m's frame.
func (h *listHold) hold(a *monitored, m wsconn.Message) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open {
		return false
	}
	if a != nil && a.owner != h.u {
		// A state of the user the socket signed out of, its socket
		// collected before the sign-in: not the new user's to see.
		m.Frame.Release()
		return true
	}
	k := heldKey{a, m.Key, m.Kind == "autoBidState"}
	if m.Key == (wsconn.Key{}) && !k.autoBid {
		h.held = append(h.held, heldMessage{a, m})
		return true
	}
	i, ok := h.at[k]
	if mark, marked := h.marks[a]; ok && (!marked || i >= mark) {
		if q := h.held[i].m; q.Epoch == m.Epoch && q.Seq > m.Seq {
			m.Frame.Release() // the held one is newer
			return true
		}
		h.held[i].m.Frame.Release()
		h.held[i].m = m
		h.r.hooksNow().coalesced()
		return true
	}
	// Not held yet, or held before the listing read the auction: that one
	// is dropped and this one sent.
	h.at[k] = len(h.held)
	h.held = append(h.held, heldMessage{a, m})
	return true
}

// mark notes that the listing has read a's state; the caller holds
// a.sendMu, so nothing of a is being sent meanwhile.
func (h *listHold) mark(a *monitored, listed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if listed {
		h.marks[a] = len(h.held)
	} else {
		h.marks[a] = math.MaxInt
	}
}

// release sends c what was held for it, after the listing, then
// opens: from then on senders send to the socket themselves. It sends
// outside h.mu, so a fan-out that holds a message meanwhile waits only
// for a slice to be swapped; what it holds then goes in the next round.
func (h *listHold) release(c *conn) {
	for first := true; ; first = false {
		h.mu.Lock()
		held, marks := h.held, h.marks
		if len(held) == 0 {
			h.open = true
			h.mu.Unlock()
			return
		}
		// Everything held from here on is newer than the listing.
		h.held, h.marks = nil, nil
		clear(h.at)
		h.mu.Unlock()
		for i, hm := range held {
			if mark, ok := marks[hm.a]; first && ok && i < mark {
				hm.m.Frame.Release()
				continue
			}
			c.s.Send(hm.m)
		}
	}
}

// listEntry is one auction of a listing, read under its sendMu.
type listEntry struct {
	s     auctionSnapshot
	state *hub.Change
}

// listAuctions sends c the listing of u's auctions, built by msg from the
// encoded list, after first (the sign-in's answer; may be nil). c must be
// one of u's sockets already, with h as its hold (conn.hold), set under
// r.mu by the caller with c's joining (a sign-in) or by listTo: whatever
// reaches c from then on is held and sent after the listing, when newer.
// Runs on c's reader goroutine, holding no lock.
func (r *Relay) listAuctions(c *conn, u *user, h *listHold, first func(), kind string, msg func(json.RawMessage) []byte) {
	if first != nil {
		first()
	}
	entries := r.readListing(u, h)
	if data := msg(r.encodeListing(entries)); data != nil {
		c.s.Send(wsconn.Message{Frame: wsconn.TextFrame(data), Kind: kind, Fence: true})
	}
	h.release(c)
	c.hold.CompareAndSwap(h, nil)
}

// listTo answers getMonitoredAuctions: the listing, held against the
// changes as a sign-in's is.
func (r *Relay) listTo(c *conn, u *user, msg func(json.RawMessage) []byte) {
	if u == nil {
		if data := msg(json.RawMessage("[]")); data != nil {
			c.sendText("response", data)
		}
		return
	}
	h := newListHold(r, u)
	c.hold.Store(h)
	r.listAuctions(c, u, h, nil, "response", msg)
}

// readListing reads u's auctions, oldest first, each under its sendMu
// (after awaitFeed, as a push does), with the engine's auto-bid state
// asked for first when none was reported, and marks each in h.
func (r *Relay) readListing(u *user, h *listHold) []listEntry {
	r.mu.RLock()
	all := make([]*monitored, 0, len(u.auctions))
	for _, a := range u.auctions {
		all = append(all, a)
	}
	r.mu.RUnlock()
	slices.SortFunc(all, func(x, y *monitored) int {
		return cmp.Or(cmp.Compare(x.AddedAt, y.AddedAt), cmp.Compare(x.ID, y.ID))
	})
	entries := make([]listEntry, 0, len(all))
	for _, a := range all {
		if r.autoBidHooks().State != nil {
			r.auctionHead(u, a.ID) // the engine's state, when none was reported yet
		}
		r.awaitFeed(a.ProductID)
		a.sendMu.Lock()
		r.mu.RLock()
		listed := !r.closing && u.auctions[a.ID] == a
		var s auctionSnapshot
		if listed {
			s = a.snapshot()
		}
		h.mark(a, listed)
		r.mu.RUnlock()
		var state *hub.Change
		if listed {
			state, _ = r.feeds.State(a.ProductID)
		}
		a.sendMu.Unlock()
		if listed {
			entries = append(entries, listEntry{s, state})
		}
	}
	return entries
}

// encodeListing encodes the entries as the extension's list of auctions.
func (r *Relay) encodeListing(entries []listEntry) json.RawMessage {
	now := r.now()
	b := []byte{'['}
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAuctionJSON(b, e.s.head, e.s.addedAt, e.state, e.s.autoBid, e.s.userFor(e.state), now)
	}
	return append(b, ']')
}
