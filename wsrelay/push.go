package wsrelay

import (
	"strconv"

	"github.com/nellis-edge/gateway/wsconn"
)

// Pushes: an auction's state sent to every socket of its user because the
// user changed the auction (startMonitoring, updateConfig, over the socket
// or REST) or the engine reported a new auto-bid state. Under one shared
// token a user may have thousands of sockets, so:
//   - The socket that asked gets the state at once, after its answer
//     (answerState), and only that socket when nothing it shows changed.
//   - The other sockets get a push that is coalesced per auction: asked
//     for while another push of the same auction waits, it is that one,
//     which reads the state only when it runs. A burst of config changes
//     or auto-bid reports reaches each socket as one frame (autoBidState
//     and auctionState for a report) with the latest state, not one per
//     change; a socket that was answered with that state already is
//     skipped.
//   - Nothing is written under Relay.mu: a push holds the auction's
//     sendMu, which orders its states against the fan-out's (deliverTo),
//     and no lock another auction's delivery needs.

// pendingPush is what the waiting push of an auction will send; guarded by
// monitored.pushMu.
type pendingPush struct {
	due     bool // a push goroutine is started and has not read this yet
	autoBid bool // send the autoBidState message too
	// answered are the sockets that got the auction's state in answer to
	// their own request, with its version: they are skipped while that
	// is still the state.
	answered map[*conn]uint64
}

// pushState sends the auction's current state to all of the user's
// sockets, coalesced with the auction's waiting push; it returns at once,
// the push runs on a goroutine of the relay.
func (r *Relay) pushState(u *user, auctionID string) {
	if a, ok := r.auctionToPush(u, auctionID); ok {
		r.schedulePush(u, a, false, nil, 0)
	}
}

// answerState sends c, the socket whose request changed (or asked again
// for) the auction, its state at once; when others, the user's other
// sockets get it too, pushed (schedulePush).
func (r *Relay) answerState(c *conn, u *user, auctionID string, others bool) {
	a, ok := r.auctionToPush(u, auctionID)
	if !ok {
		return
	}
	r.awaitFeed(a.ProductID)
	a.sendMu.Lock()
	r.mu.RLock()
	_, signedIn := u.conns[c] // one socket: never a visit of all of them
	if r.closing || u.auctions[auctionID] != a {
		r.mu.RUnlock()
		a.sendMu.Unlock()
		return
	}
	s, version := a.snapshot(), a.version
	r.mu.RUnlock()
	defer a.sendMu.Unlock()
	if !signedIn {
		c = nil
	} else {
		r.sendState(a, &s, []*conn{c}, false)
	}
	// Still under sendMu, so no push takes what waits between c's answer
	// and the note that c has it.
	switch {
	case others:
		r.schedulePush(u, a, false, c, version)
	case c != nil:
		a.pushMu.Lock()
		if a.pending.due { // a push waits: c has what it would send, unless the state changes first
			a.pending.answer(c, version)
		}
		a.pushMu.Unlock()
	}
}

func (p *pendingPush) answer(c *conn, version uint64) {
	if p.answered == nil {
		p.answered = make(map[*conn]uint64)
	}
	p.answered[c] = version
}

// schedulePush starts a push of a's state to all of the user's sockets
// (but answered, while the state is still version), with the autoBidState
// message first when autoBid, unless one is waiting already: that one
// sends what is current when it runs, the auto-bid message included once
// asked for. It may be called holding a's sendMu (the push then waits for
// it), never Relay.mu.
func (r *Relay) schedulePush(u *user, a *monitored, autoBid bool, answered *conn, version uint64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closing || u.auctions[a.ID] != a || len(u.conns) == 0 {
		return
	}
	a.pushMu.Lock()
	a.pending.autoBid = a.pending.autoBid || autoBid
	if answered != nil {
		a.pending.answer(answered, version)
	}
	start := !a.pending.due
	a.pending.due = true
	a.pushMu.Unlock()
	if start {
		// Added under mu while not closing: Shutdown sets closing under
		// mu before it waits for r.wg.
		r.wg.Add(1)
		go r.push(u, a)
	}
}

// push is one coalesced push of a's state (schedulePush). It reads the
// state and sends it under a's sendMu, which deliverTo holds from
// building a change's frame to sending it: a change published meanwhile
// is either in this state already or sent after it, so a socket never
// gets a price older than one it has. Relay.mu is held only to copy the
// auction and the user's sockets, not while writing.
func (r *Relay) push(u *user, a *monitored) {
	defer r.wg.Done()
	defer r.recoverPanic("push")
	r.auctionToPush(u, a.ID) // the engine's state, when none was reported yet
	r.awaitFeed(a.ProductID)
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	// What is asked for from here on is a new push: this one reads the
	// state after taking what waits.
	a.pushMu.Lock()
	p := a.pending
	a.pending = pendingPush{}
	a.pushMu.Unlock()
	r.mu.RLock()
	if r.closing || u.auctions[a.ID] != a {
		r.mu.RUnlock()
		return
	}
	s, version := a.snapshot(), a.version
	if version == a.pushed && !p.autoBid {
		// Every socket has this state: an earlier push sent it, and a
		// socket signed in since got it in its list.
		r.mu.RUnlock()
		return
	}
	a.pushed = version
	conns := make([]*conn, 0, len(u.conns))
	for c := range u.conns {
		if v, ok := p.answered[c]; !ok || v != version {
			conns = append(conns, c)
		}
	}
	r.mu.RUnlock()
	if len(conns) > 0 {
		r.sendState(a, &s, conns, p.autoBid)
	}
}

// auctionToPush returns the user's auction, having asked the engine for
// its auto-bid state when none was reported yet, outside every lock (the
// engine may be reporting one itself).
func (r *Relay) auctionToPush(u *user, auctionID string) (*monitored, bool) {
	if _, ok := r.auctionHead(u, auctionID); !ok {
		return nil, false
	}
	r.mu.RLock()
	a := u.auctions[auctionID]
	r.mu.RUnlock()
	return a, a != nil
}

// readyAwaiter is implemented by Feeds whose State may wait for a new
// feed to read its past (hub.Hub in a cluster).
type readyAwaiter interface {
	AwaitReady(productID int64)
}

// awaitFeed waits, bounded, until the product's feed can answer State at
// once. Call it before taking an auction's sendMu, never under it: a new
// cluster feed hands the log's past to the fan-out (deliverTo, which takes
// sendMu) before it is ready, so a State waiting under sendMu would hold
// the feed, and the user's state, for the hub's whole wait (2 s).
func (r *Relay) awaitFeed(productID int64) {
	if w, ok := r.feeds.(readyAwaiter); ok {
		w.AwaitReady(productID)
	}
}

// sendState sends conns the auction's state with the feed's latest change,
// after the autoBidState message when withAutoBid. Callers hold the
// auction's sendMu, not r.mu, and have awaited the feed (awaitFeed): the
// hub calls deliver outside its own locks, so reading its state here
// cannot deadlock.
func (r *Relay) sendState(a *monitored, s *auctionSnapshot, conns []*conn, withAutoBid bool) {
	if withAutoBid && s.autoBid.known() {
		sendToAll(conns, a, wsconn.Message{Frame: wsconn.TextFrame(autoBidStateJSON(a.ID, s.autoBid)), Kind: "autoBidState"})
	}
	state, _ := r.feeds.State(s.productID)
	f := auctionStateFrame(s.head, s.addedAt, state, s.autoBid, s.userFor(state), r.now())
	msg := wsconn.Message{Frame: f, Kind: "auctionState", Key: stateKey(a.ID)}
	if state != nil {
		msg.Epoch, msg.Seq = state.Epoch, state.Seq
	}
	sendToAll(conns, a, msg)
}

// autoBidStateJSON is the autoBidState message of an auction's state:
//
//	{"type":"autoBidState","auctionId":"…","state":<state>}
func autoBidStateJSON(auctionID string, v autoBidView) []byte {
	enc := v.json()
	b := make([]byte, 0, len(enc)+len(auctionID)+48)
	b = append(b, `{"type":"autoBidState","auctionId":`...)
	b = strconv.AppendQuote(b, auctionID)
	b = append(b, `,"state":`...)
	b = append(b, enc...)
	return append(b, '}')
}
