package bidding

import "context"

// msgClusterLost is the auto-bid state of a user on a cluster node cut off
// from the others: it bids on nothing until they are back, and says why
// rather than going quiet.
const msgClusterLost = "Cluster unavailable: this gateway lost its connection to the other gateways. Auto-bid is paused until it is back."

// refusalClusterLost answers a manual bid on a node cut off from its
// cluster: no owner can be reached, and none is asked. Retryable, as for
// no owner: the bid was not sent.
var refusalClusterLost = refusal(ErrTypeNoOwner, "Cluster unavailable: this gateway lost its connection to the other gateways, so the bid was not sent: bid again in a moment.", true)

// Pauser is an Owner that can say it owns nothing for a reason the users
// should see: a cluster node without NATS (hub.Hub.BidsPaused).
type Pauser interface {
	BidsPaused() bool
}

// paused reports whether this node bids on nothing for a reason shown.
func (e *Engine) paused() bool {
	p, ok := e.cluster().Owner.(Pauser)
	return ok && p.BidsPaused()
}

// pauseState is what a state showed before the pause, to show again
// once it ends if another node decides the lot meanwhile.
type pauseState struct {
	on              bool
	status, message string
}

// showPause marks the states of productID's auto-bidders here paused, or
// back to what they showed before, and returns those to report. A node
// that owns the lot again decides the status anew (decideAll).
func (e *Engine) showPause(productID int64, paused bool) []stateKey {
	e.mu.Lock()
	_, shown := e.pausedLots[productID]
	e.mu.Unlock()
	if !paused && !shown {
		return nil // the usual case on a reader: nothing to undo
	}
	watchers := e.dir.AutoBidders(productID)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	if paused {
		if e.pausedLots == nil {
			e.pausedLots = make(map[int64]struct{})
		}
		e.pausedLots[productID] = struct{}{}
	} else {
		delete(e.pausedLots, productID)
	}
	var touched []stateKey
	for _, lw := range lotWatchers(watchers) {
		k := stateKey{lw.User, productID}
		var st *bidState
		if paused {
			st = e.stateLocked(k, lw.ids...)
			if !st.pause.on {
				st.pause = pauseState{on: true, status: st.status, message: st.message}
			}
			st.setStatus(StatusError, msgClusterLost)
		} else {
			st = e.states[k]
			if st == nil || !st.pause.on {
				continue
			}
			st.setStatus(st.pause.status, st.pause.message)
			st.pause = pauseState{}
		}
		if st.version != st.reported {
			touched = append(touched, k)
		}
	}
	return touched
}

// Recheck makes every lot's worker look again at once: the node's right to
// bid changed for all of them together (a cluster node cut off from the
// others, or back), with no news from the feeds to wake them. A read of a
// lot's record under way ends first (Engine.rights), so that no worker
// waits on it before it looks.
func (e *Engine) Recheck() {
	e.mu.Lock()
	e.rightsCancel()
	e.rights, e.rightsCancel = context.WithCancel(e.ctx)
	workers := make([]*worker, 0, len(e.workers))
	for _, w := range e.workers {
		workers = append(workers, w)
	}
	e.mu.Unlock()
	for _, w := range workers {
		w.poke()
	}
}

// rightsContext is the context of the node's right to bid as it stands:
// Recheck ends it.
func (e *Engine) rightsContext() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rights
}
