package wsrelay

import (
	"encoding/json"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/users"
)

// Peers carries what this node says to one user to that user's sockets on
// the other gateways of a cluster, and back (clusterusers.UserNews). In a
// cluster only a lot's owner runs its auto-bid engine and fetches its
// snapshots with the users' cookies, so the states the engine reports
// and the standing a snapshot gives (hub.Change.User) exist on that node
// alone; a user's socket may be on any node.
type Peers interface {
	// PublishAutoBid sends the engine's state of a user's auction (it
	// sends nothing for a lot this node does not own).
	PublishAutoBid(s users.AutoBidState)
	// PublishUserState sends a user's standing on a lot from a snapshot
	// fetched here with their cookies.
	PublishUserState(name string, s users.LotUserState)
	// Touch says the user's sockets here changed: the peers follow the
	// user's news while HasSockets says so. Never called under the
	// relay's lock.
	Touch(name string)
}

// SetPeers makes the relay send its users' news to p and follow theirs
// while they have sockets here (nil: a single node). The users who have
// sockets already are followed at once.
func (r *Relay) SetPeers(p Peers) {
	if p == nil {
		r.peers.Store(nil)
		return
	}
	r.peers.Store(&p)
	r.mu.RLock()
	var names []string
	for name, u := range r.users {
		if len(u.conns) > 0 {
			names = append(names, name)
		}
	}
	r.mu.RUnlock()
	for _, name := range names {
		p.Touch(name)
	}
}

func (r *Relay) peersNow() Peers {
	if p := r.peers.Load(); p != nil {
		return *p
	}
	return nil
}

// touchPeers tells the peers that name's sockets changed; never called
// under r.mu.
func (r *Relay) touchPeers(name string) {
	if p := r.peersNow(); p != nil && name != "" {
		p.Touch(name)
	}
}

// HasSockets says whether the user has a signed-in socket here.
func (r *Relay) HasSockets(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.users[name]
	return u != nil && len(u.conns) > 0
}

// ApplyPeerAutoBid shows another node's engine state of a user's auction
// as ReportAutoBid shows this node's, without sending it on.
func (r *Relay) ApplyPeerAutoBid(state users.AutoBidState) {
	r.applyAutoBid(state)
}

// ApplyPeerUserState shows a user's standing on a lot that another node's
// snapshot gave, as this node's own fetch would (monitored.observe): it
// stays the user's own state of each auction of theirs on the lot, under
// their cookies here, and is pushed to their sockets.
func (r *Relay) ApplyPeerUserState(name string, s users.LotUserState) {
	r.mu.Lock()
	u := r.users[name]
	if u == nil || r.closing {
		r.mu.Unlock()
		return
	}
	us := &hub.UserState{Owner: u.stateKey, IsWinning: s.IsWinning, IsWatching: s.IsWatching, NextBid: s.NextBid}
	var touched []*monitored
	for _, a := range u.auctions {
		if a.ProductID != s.ProductID {
			continue
		}
		if prev := a.userState.Load(); prev != nil && *prev == *us {
			continue
		}
		a.userState.Store(us)
		a.version++
		touched = append(touched, a)
	}
	r.mu.Unlock()
	for _, a := range touched {
		r.schedulePush(u, a, false, nil, 0)
	}
}

// userStateOwnerLocked names the user whose cookies fetched c's user
// state (the owner of one of targets), "" when none or without peers;
// callers hold r.mu (read is enough) and publish after they let go of it
// (publishUserState), as a publish may wait for the bus.
func (r *Relay) userStateOwnerLocked(c *hub.Change, targets []*monitored) string {
	if c.User == nil || r.peers.Load() == nil {
		return ""
	}
	for _, a := range targets {
		if a.owner.stateKey == c.User.Owner {
			return a.owner.name
		}
	}
	return ""
}

// publishUserState sends c's user state to name's sockets on the peers.
func (r *Relay) publishUserState(name string, c *hub.Change) {
	if p := r.peersNow(); p != nil && name != "" && c.User != nil {
		p.PublishUserState(name, users.LotUserState{
			ProductID: c.ProductID, IsWinning: c.User.IsWinning, IsWatching: c.User.IsWatching, NextBid: c.User.NextBid,
		})
	}
}

// PeerNews is what this node last showed the user on each of their
// auctions: the engine's latest auto-bid state, and their own standing
// from a snapshot fetched with their cookies. The peers send it again
// when another node starts following the user (a socket of theirs opened
// there); they keep the lots this node owns.
func (r *Relay) PeerNews(name string) ([]users.AutoBidState, []users.LotUserState) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.users[name]
	if u == nil {
		return nil, nil
	}
	var states []users.AutoBidState
	var lots []users.LotUserState
	seen := make(map[int64]bool)
	for _, a := range u.auctions {
		if a.autoBid.known() {
			s := users.AutoBidState{User: name, AuctionID: a.ID}
			if json.Unmarshal(a.autoBid.json(), &s) == nil {
				s.ProductID = a.ProductID
				states = append(states, s)
			}
		}
		if us := a.ownState(nil); us != nil && !seen[a.ProductID] {
			seen[a.ProductID] = true
			lots = append(lots, users.LotUserState{ProductID: a.ProductID, IsWinning: us.IsWinning, IsWatching: us.IsWatching, NextBid: us.NextBid})
		}
	}
	return states, lots
}
