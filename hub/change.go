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
	Product    nellis.Product // the full state after the change
	JSON       []byte         // Product encoded once, shared by every client
}

// Subscriber receives a feed's changes. Deliver is called from the feed's
// goroutine, which does nothing else until it returns (see Hub.Subscribe),
// so it must never wait on a client: the relay writes to its sockets
// without blocking and queues only what the kernel does not take, but it
// returns only once every socket has been written to or queued for.
type Subscriber interface {
	Deliver(c *Change)
}
