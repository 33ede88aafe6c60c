package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/nellis"
)

// acting reports whether the feed may run the upstream: always on a
// single node, only as the owner in a cluster.
func (f *feed) acting() bool {
	return f.share == nil || f.share.role != roleReader
}

// Owns reports whether this node acts on the product (streams it, polls
// it, bids on it): always on a single node; in cluster mode while its feed
// holds the product's lease and the lease is still valid, so a node that
// lost its lease, or stalled past it, stops bidding before another node
// can have begun.
func (h *Hub) Owns(productID int64) bool {
	if h.sharing == nil {
		return true
	}
	f := h.feed(productID)
	if f == nil || f.share == nil {
		return false
	}
	l := f.share.held.Load()
	return l != nil && l.Valid()
}

// joinShared starts a cluster feed as a reader: once the node follows the
// log, it reads the product's past into the history, then plans its first
// claim (at once on the node the rendezvous hash prefers, a little later
// on the others, so that ownership spreads over the nodes).
func (f *feed) joinShared() {
	sh := f.share
	defer close(sh.ready)
	if sh.s.alone.Load() {
		return // cut off: no log to read; the first tick makes it standalone
	}
	t := time.NewTimer(readyWait)
	select {
	case <-sh.s.subscribed:
	case <-f.ctx.Done():
	case <-t.C:
	}
	t.Stop()
	f.catchUp()
	sh.claimAt = f.firstClaimAt()
}

func (f *feed) firstClaimAt() time.Time {
	bus := f.share.s.bus
	now := time.Now()
	nodes, err := f.share.s.liveNodes(f.ctx)
	if err != nil || len(nodes) == 0 || cluster.Rendezvous(f.id, nodes) == bus.Node() {
		return now
	}
	return now.Add(bus.RenewEvery() / 2)
}

// sharedWake is when the cluster side needs the feed next, by the real
// clock: an owner when its lease stops being valid, a reader with local
// interest at its next claim.
func (f *feed) sharedWake() time.Time {
	sh := f.share
	switch {
	case sh == nil:
		return time.Time{}
	case sh.role == roleOwner:
		at := sh.lease.ValidUntil()
		if ask := f.askWake(); !ask.IsZero() && ask.Before(at) {
			at = ask
		}
		return at
	case sh.s.alone.Load():
		return time.Time{} // no claims without NATS; watchBus wakes the feed
	case sh.role == roleAlone:
		return sh.claimAt
	case f.lingerSince.IsZero():
		at := f.readerClaimAt()
		if ask := f.askDue(); !ask.IsZero() && (at.IsZero() || ask.Before(at)) {
			at = ask
		}
		if sh.role == roleReader && !sh.readAt.IsZero() && (at.IsZero() || sh.readAt.Before(at)) {
			at = sh.readAt
		}
		return at
	case sh.role == roleReader:
		return sh.readAt // a lingering reader still reads what it missed
	}
	return time.Time{}
}

// tickShared takes what the log brought, stops owning a lease that was
// lost or is running out, and claims the product when a reader's turn
// comes: when nobody holds it, or its holder stopped renewing.
func (f *feed) tickShared() {
	sh := f.share
	if sh == nil {
		return
	}
	lost := sh.s.alone.Load()
	if sh.role == roleAlone {
		sh.take() // read again once the claim has settled who owns
		switch {
		case lost:
		case sh.claimAt.IsZero():
			sh.claimAt = time.Now()
			fallthrough
		case !time.Now().Before(sh.claimAt):
			f.tryClaim()
		}
		return
	}
	f.takeInbox()
	if !lost {
		f.retryRead()
	}
	f.followInterest()
	if sh.role == roleOwner {
		switch {
		case sh.s.keeper.Lease(f.id) != sh.lease:
			f.log.Warn("cluster: another node took the product's lease; closing the upstream")
			f.stepDown(HandoverDeposed)
		case !sh.lease.Valid():
			f.log.Warn("cluster: the product's lease could not be renewed in time; closing the upstream")
			f.stepDown(HandoverLapsed)
		case !lost:
			f.answerAsk()
		}
	}
	if lost {
		if f.lingerSince.IsZero() {
			f.goAlone()
		}
		return
	}
	if sh.role == roleReader {
		sh.watchedOwner()
		f.maybeAsk()
	}
	// Only a node with local interest claims.
	if sh.role == roleReader && f.lingerSince.IsZero() && !sh.claimAt.IsZero() && !time.Now().Before(f.readerClaimAt()) {
		f.tryClaim()
	}
}

// tryClaim claims the product's lease and, on success, continues its log
// as owner: the history first catches up with what the last owner
// appended, one change moves the log on (fencing out that owner's late
// appends), and the upstream opens as on a single node.
func (f *feed) tryClaim() {
	sh := f.share
	bus := sh.s.bus
	if sh.role == roleReader {
		// The owners' watch says when to claim again; this is its fallback.
		sh.claimAt = time.Now().Add(sh.s.claimFallback())
		sh.claimed()
	} else {
		sh.claimAt = time.Now().Add(bus.RenewEvery())
	}
	ctx, cancel := context.WithTimeout(f.ctx, bus.RenewEvery())
	defer cancel()
	// A standalone feed rejoining keeps serving until the claim settles.
	alone := sh.role == roleAlone && f.last != nil && f.last.Epoch == sh.aloneEpoch
	lease, err := bus.Claim(ctx, f.id)
	if err != nil {
		if held, ok := errors.AsType[*cluster.HeldError](err); ok {
			if sh.role == roleAlone && held.Node != bus.Node() {
				f.giveWay(held.Node)
			} else {
				sh.setOwner(held.Node)
			}
		} else if !errors.Is(err, cluster.ErrHeld) {
			f.log.Debug("cluster: claiming the product failed", zap.Error(err))
		}
		return
	}
	app, err := cluster.TakeOver(ctx, bus, lease, f.nextEpoch)
	if err != nil {
		f.log.Debug("cluster: reading the product's log to own it failed", zap.Error(err))
		f.release(lease)
		return
	}
	if !alone && app.Seq() > 0 && (f.last == nil || f.last.Epoch != app.Epoch() || f.last.Seq < app.Seq()) {
		f.catchUp()
	}
	if !sh.s.keeper.Add(lease) {
		return // the hub is closing; the lease was released
	}
	sh.role, sh.lease, sh.app = roleOwner, lease, app
	sh.ownedAt = time.Now()
	sh.dropAsk() // asks made of an earlier owner
	sh.held.Store(lease)
	sh.setOwner(bus.Node())
	f.h.markReader(f, false)
	if hook := f.h.hooks.Ownership; hook != nil {
		hook(f.id, true, "claimed")
	}
	f.log.Info("cluster: owning the product's upstream", zap.String("epoch", app.Epoch()), zap.Uint64("seq", app.Seq()))
	if alone {
		// Back from standalone: its state, the newest this node has,
		// continues the log's epoch, which clients on every node follow.
		f.publish(f.last.Source, f.h.clock.Now(), nil)
	} else if last := f.last; app.Seq() > 0 && last != nil && last.Epoch == app.Epoch() && last.Seq == app.Seq() {
		// The same state again at the next seq: a previous owner that
		// stalled past its lease finds the log moved on and is refused.
		f.publish(last.Source, f.h.clock.Now(), nil)
	}
	if f.acting() {
		f.startFetch(fetchInitial)
	}
}

// markReader tells the rebalancer whether f reads the log (and so needs
// no poll budget here) or owns the upstream.
func (h *Hub) markReader(f *feed, reader bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.slot.reader != reader {
		f.slot.reader = reader
		h.kickRebalance()
	}
}

// nextEpoch is the epoch of a log this owner finds empty: the feed's own
// while it has published nothing, else a fresh one.
func (f *feed) nextEpoch() string {
	if f.last == nil {
		return f.epoch
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// stepDown stops owning: the upstream closes and polls stop at once, the
// lease is released (if another node has not taken it already), and the
// feed reads the log as a reader, claiming again a renewal period later.
func (f *feed) stepDown(reason string) {
	sh := f.share
	lease := sh.lease
	sh.role, sh.lease, sh.app = roleReader, nil, nil
	sh.held.Store(nil)
	sh.setOwner("")
	f.h.markReader(f, true)
	f.closeStream()
	f.nextPoll = time.Time{}
	f.reconcileAfter = false
	sh.claimAt = time.Now().Add(sh.s.bus.RenewEvery())
	// The status says reader before the release, which may wait a
	// renewal period on NATS: meanwhile another node may own the product,
	// and two owners in /nellis/feeds would mislead.
	f.publishStatus()
	f.release(lease)
	if hook := f.h.hooks.Ownership; hook != nil {
		hook(f.id, false, reason)
	}
}

// release gives the lease up, bounded by a renewal period (NATS may be
// away: the lease then runs out by itself).
func (f *feed) release(l *cluster.Lease) {
	if l == nil {
		return
	}
	sh := f.share
	if sh.s.alone.Load() {
		// NATS away: the key runs out by itself; no call to wait on. A
		// lease the keeper no longer holds was lost already.
		if sh.s.keeper.Lease(f.id) == l {
			sh.s.keeper.Drop(f.id)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sh.s.bus.RenewEvery())
	defer cancel()
	var err error
	if sh.s.keeper.Lease(f.id) == l {
		err = sh.s.keeper.Release(ctx, f.id)
	} else {
		err = sh.s.bus.Release(ctx, l)
	}
	if err != nil && !errors.Is(err, cluster.ErrClosed) {
		f.log.Debug("cluster: releasing the product's lease failed; it runs out by itself", zap.Error(err))
	}
}

// leaveShared, as the feed ends, gives up what it owns. A new feed of the
// product here, started while this one was ending, was refused the lease
// this one held: it is told to claim again at once.
func (f *feed) leaveShared() {
	if f.share == nil || f.share.role != roleOwner {
		return
	}
	f.stepDown(HandoverReleased)
	if next := f.h.feed(f.id); next != nil && next != f && next.share != nil {
		next.share.freed()
	}
}

// appendShared stores the owner's next change in the log and returns its
// epoch and seq; false when this node may not publish it, having stopped
// owning the product (the change then reaches everyone from the new
// owner, if at all).
func (f *feed) appendShared(src Source, receivedAt time.Time) (epoch string, seq uint64, ok bool) {
	sh := f.share
	if sh.role == roleAlone {
		epoch, seq = f.aloneSeq()
		return epoch, seq, true
	}
	if sh.role != roleOwner {
		return "", 0, false
	}
	// The shared product only: never Change.User (see hub/shared.go).
	payload, err := json.Marshal(f.product)
	if err != nil {
		f.log.Error("cluster: product not encodable; change dropped", zap.Error(err))
		return "", 0, false
	}
	ctx, cancel := context.WithTimeout(f.ctx, sh.s.bus.RenewEvery())
	e, err := sh.app.Append(ctx, string(src), receivedAt, payload)
	cancel()
	result := AppendOK
	switch {
	case err == nil:
	case errors.Is(err, cluster.ErrDeposed):
		result = AppendDeposed
	case errors.Is(err, cluster.ErrLapsed):
		result = AppendLapsed
	default:
		result = AppendError
	}
	if hook := f.h.hooks.SharedAppend; hook != nil {
		hook(f.id, result)
	}
	switch result {
	case AppendOK:
		return e.Epoch, e.Seq, true
	case AppendDeposed:
		f.log.Warn("cluster: deposed, another node appended to the product's log; closing the upstream")
		f.stepDown(HandoverDeposed)
		f.catchUp()
	case AppendLapsed:
		f.log.Warn("cluster: the product's lease lapsed; closing the upstream")
		f.stepDown(HandoverLapsed)
	default:
		f.log.Warn("cluster: appending to the product's log failed; closing the upstream", zap.Error(err))
		f.stepDown(HandoverError)
	}
	return "", 0, false
}

// takeInbox applies the entries the log brought.
func (f *feed) takeInbox() {
	entries, overflow := f.share.take()
	if overflow {
		f.catchUp()
	}
	for _, e := range entries {
		f.takeEntry(e)
	}
}

// takeEntry applies one entry of the log: the next of the history is
// published, one already known is skipped, and after a gap (or an epoch
// this feed does not know) the log is read again. An entry this node did
// not write while it owns the product means it was deposed.
func (f *feed) takeEntry(e cluster.Entry) {
	last := f.last
	if last != nil && e.Epoch == last.Epoch && e.Seq <= last.Seq {
		return
	}
	if f.share.role == roleOwner {
		f.log.Warn("cluster: another node appended to the product's log; closing the upstream")
		f.stepDown(HandoverDeposed)
	}
	if (last == nil && e.Seq == 1) || (last != nil && e.Epoch == last.Epoch && e.Seq == last.Seq+1) {
		f.applyEntry(e, true)
		return
	}
	if !f.catchUp() {
		f.applyEntry(e, true)
	}
}

// catchUp reads the log from the history's last seq (or all of it, for
// another epoch) and applies what is new; false when it could not. A
// failed read is tried again (retryRead), so that a feed whose read of the
// log's past failed is not left without the product's state.
func (f *feed) catchUp() bool {
	bus := f.share.s.bus
	ctx, cancel := context.WithTimeout(f.ctx, f.share.readWait())
	defer cancel()
	var since uint64
	if f.last != nil && !f.share.fromStart {
		since = f.last.Seq
	}
	entries, err := bus.Backfill(ctx, f.id, since)
	if err == nil && since > 0 && len(entries) > 0 && entries[0].Epoch != f.last.Epoch {
		entries, err = bus.Backfill(ctx, f.id, 0) // another epoch: all of it
	}
	if err != nil {
		f.readFailed(err)
		return false
	}
	f.readDone()
	f.share.fromStart = false
	var fresh []cluster.Entry
	for _, e := range entries {
		if f.last != nil && e.Epoch == f.last.Epoch && e.Seq <= f.last.Seq {
			continue
		}
		fresh = append(fresh, e)
	}
	// Entries of another epoch than the one the subscribers follow (a
	// standalone feed giving way to the log) fill the history for
	// resuming clients, and only the newest reaches the subscribers: they
	// had a newer state of their own and must never be handed the log's
	// older prices one by one. A new reader's subscribers, who have had
	// nothing yet, get the log in order.
	quiet := len(fresh) > 1 && f.last != nil && f.last.Epoch != fresh[0].Epoch
	for i, e := range fresh {
		if quiet && i < len(fresh)-1 {
			f.keepEntry(e)
		} else {
			f.applyEntry(e, false)
		}
	}
	return true
}

// applyEntry publishes an entry of the log as the product's next change;
// live for one that just arrived, not read back from the log's past,
// whose delivery across nodes is timed (Hooks.LogPublished).
func (f *feed) applyEntry(e cluster.Entry, live bool) {
	c := f.entryChange(e)
	if c == nil {
		return
	}
	f.deliver(c)
	if hook := f.h.hooks.LogPublished; hook != nil && live {
		hook(e.ReceivedAt)
	}
}

// keepEntry puts an entry of the log into the history without handing it
// to the subscribers: a newer one follows at once.
func (f *feed) keepEntry(e cluster.Entry) {
	if c := f.entryChange(e); c != nil {
		f.mu.Lock()
		f.accept(c)
		f.mu.Unlock()
	}
}

// entryChange is an entry of the log as the product's change, the feed's
// product then; nil for an entry that is not this product's.
func (f *feed) entryChange(e cluster.Entry) *Change {
	var p nellis.Product
	if err := json.Unmarshal(e.Payload, &p); err != nil || p.ID != f.id {
		f.log.Warn("cluster: an entry of the product's log is not its product; skipped",
			zap.String("epoch", e.Epoch), zap.Uint64("seq", e.Seq), zap.Error(err))
		return nil
	}
	body, err := sharedJSON(p)
	if err != nil {
		f.log.Warn("cluster: an entry of the product's log is not encodable; skipped", zap.Error(err))
		return nil
	}
	f.product = p
	f.mu.Lock()
	f.fresh = f.h.clock.Now()
	f.mu.Unlock()
	return &Change{
		ProductID:  f.id,
		Epoch:      e.Epoch,
		Seq:        e.Seq,
		Source:     Source(e.Source),
		ReceivedAt: e.ReceivedAt,
		Product:    p,
		JSON:       body,
	}
}
