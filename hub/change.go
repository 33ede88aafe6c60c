// Package hub holds the per-product feeds: one per product for the whole
// process, each merging its upstream (SSE or polled snapshots) into a state
// with an epoch, a sequence and a short history, and handing every change to
// the subscribers that showed interest.
package hub

import (
	"time"

	"github.com/nellis-edge/gateway/nellis"
)

// Source says where a change came from.
type Source string

// The sources of a change.
const (
	SourceSSE       Source = "sse"       // a live upstream event
	SourcePoll      Source = "poll"      // a polled snapshot
	SourceReconcile Source = "reconcile" // a snapshot fetched to heal a gap
)

// Change is one published state of a product. It is immutable once
// published: every subscriber receives the same pointer.
type Change struct {
	ProductID  int64
	Epoch      string // random per feed; a new feed means a new epoch
	Seq        uint64 // grows by one per change within an epoch
	Source     Source
	ReceivedAt time.Time      // when the upstream bytes behind it arrived
	Product    nellis.Product // the full state after the change, as everyone sees it
	// JSON is Product encoded once, shared by every client, without the
	// fields each viewer sees their own way (nextBid and minimumBid here;
	// isWinning and isWatching are no product's): a relay adds them per
	// viewer, from User for its owner and from Product for everyone else.
	JSON []byte
	// User is what the snapshot behind this change said about the user
	// whose cookies fetched it, nil when none did. Only that user may see
	// it: it rides on the shared change so that it reaches them in order
	// with the price it was fetched with.
	User *UserState
}

// UserState is one user's standing on a lot, from a snapshot fetched with
// their cookies (its userState).
type UserState struct {
	// Owner is the opaque key Deps.Cookies gave with the cookies: the
	// relay knows whose it is, the hub does not.
	Owner      string
	IsWinning  bool
	IsWatching bool
	NextBid    float64 // the lowest bid Nellis takes from them; 0 when unknown
}

// newUserState is what a snapshot fetched with owner's cookies said about
// them, nil when it was fetched anonymously or said nothing.
func newUserState(owner string, u *nellis.UserState) *UserState {
	if owner == "" || u == nil {
		return nil
	}
	s := &UserState{Owner: owner}
	if u.IsWinning != nil {
		s.IsWinning = *u.IsWinning
	}
	if u.IsWatching != nil {
		s.IsWatching = *u.IsWatching
	}
	if u.NextBid != nil {
		s.NextBid = *u.NextBid
	}
	return s
}

// Subscriber receives a feed's changes. Deliver is called from the feed's
// goroutine, which does nothing else until it returns (see Hub.Subscribe),
// so it must never wait on a client: the relay writes to its sockets
// without blocking and queues only what the kernel does not take, but it
// returns only once every socket has been written to or queued for.
type Subscriber interface {
	Deliver(c *Change)
}
