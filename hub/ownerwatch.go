package hub

import (
	"context"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/nellis-edge/gateway/cluster"
)

// The owners' watch. A reader with local interest must claim its product
// soon after the owner releases it or dies. Rather than each reader
// asking NATS every renewal period (two key-value calls per lot), the
// node watches the lease keys once (cluster.Bus.WatchOwners): a reader
// claims when its product's key is deleted, or has not been written for a
// full lease (its owner stopped renewing), and otherwise only every
// claimFallback, in case the watch missed something.

// claimFallback is how often a reader claims without news from the watch:
// a lease, three renewal periods.
func (s *sharing) claimFallback() time.Duration { return 3 * s.bus.RenewEvery() }

// watchOwners runs the node's watch of the lease keys until Hub.Close
// (keepOpen).
func (s *sharing) watchOwners() {
	s.keepOpen("watch the owners", zapcore.DebugLevel,
		func(ctx context.Context) (cluster.Subscription, error) { return s.bus.WatchOwners(ctx, s.ownerChanged) },
		func() {})
}

// ownerChanged hands a write of a lease key to the product's local feed.
// It runs on the watch's goroutine and never waits on a feed.
func (s *sharing) ownerChanged(c cluster.OwnerChange) {
	f := s.h.feed(c.ProductID)
	if f == nil || f.share == nil {
		return
	}
	sh := f.share
	sh.mu.Lock()
	sh.keyAt, sh.keyGone = time.Now(), c.Node == ""
	changed := sh.keyNode != c.Node || sh.keyHanded != c.Handover
	sh.keyNode, sh.keyHanded = c.Node, c.Handover
	sh.mu.Unlock()
	// A renewal changes nothing to wake for: the feed's timer is at the
	// key's staleness already, and finds it renewed.
	if changed {
		sh.wake()
	}
}

// keyDue is when the watch says the reader should claim: now for a
// deleted key or one handed to this node, a lease after the last write
// for a live one; zero without news from the watch.
func (sh *feedShare) keyDue() time.Time {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	switch {
	case sh.keyGone, sh.keyHanded && sh.keyNode == sh.s.bus.Node():
		return sh.keyAt
	case sh.keyAt.IsZero():
		return time.Time{}
	}
	return sh.keyAt.Add(sh.s.claimFallback())
}

// claimed notes that the reader just claimed: what the watch said until
// now is acted on.
func (sh *feedShare) claimed() {
	sh.triedAt = time.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.keyGone = false
}

// freed tells a reader that this node's previous feed of the product let
// its lease go: the key is gone, or this process's own to take again.
func (sh *feedShare) freed() {
	sh.mu.Lock()
	sh.keyAt, sh.keyGone = time.Now(), true
	sh.mu.Unlock()
	sh.wake()
}

// keyHolder is the node the watch last saw holding the product's lease,
// or the node it is handed to (handed); "" when none.
func (sh *feedShare) keyHolder() (node string, handed bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.keyGone {
		return "", false
	}
	return sh.keyNode, sh.keyHanded
}

// watchedOwner makes what the watch last saw the owner Status shows.
func (sh *feedShare) watchedOwner() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !sh.keyAt.IsZero() {
		sh.owner = sh.keyNode
	}
}

// readerClaimAt is a reader's next claim: the watch's, if it brought news
// since the last claim, or the fallback's.
func (f *feed) readerClaimAt() time.Time {
	sh := f.share
	at := sh.claimAt
	if due := sh.keyDue(); due.After(sh.triedAt) && (at.IsZero() || due.Before(at)) {
		at = due
	}
	return at
}
