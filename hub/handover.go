package hub

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/nellis-edge/gateway/cluster"
)

// Moving ownership back to the rendezvous choice. After a failover, or
// when a node joins, a product stays with whoever took it. A reader with
// local interest that the rendezvous hash ranks above the product's owner
// asks the owner for it (cluster.Bus.AskHandover); the owner closes its
// upstream, stops acting, and hands the lease to the asker
// (cluster.Bus.HandOver), which claims it at once and continues the log's
// epoch at the next seq, as every new owner does. The owner stops before
// the key names the asker and the asker starts only after, so the product
// never has two streams; the log's fence refuses anything the old owner
// might still append.
//
// Hysteresis, so that ownership does not flap as clients come and go:
// a reader asks only once it has had local interest for a lease, and
// again every lease while it still outranks the owner; an owner hands a
// product over only after owning it for two leases; and a lot in or near
// its closing window (closing_window + stream_closing_margin), or over,
// stays where it is, since a handover costs its new owner a first
// snapshot and its bids a moment. Among several askers the owner hands to
// the one ranked highest, so a product moves at most once per asker
// above its owner, each time to a node ranked higher.

// leaseTime is the cluster's lease: three renewal periods.
func (s *sharing) leaseTime() time.Duration { return 3 * s.bus.RenewEvery() }

// askAfter is how long a reader has had local interest before it asks.
func (s *sharing) askAfter() time.Duration { return s.leaseTime() }

// minHold is how long an owner keeps a product before handing it over.
func (s *sharing) minHold() time.Duration { return 2 * s.leaseTime() }

// serveHandovers runs the node's subscription to handover asks until
// Hub.Close (keepOpen).
func (s *sharing) serveHandovers() {
	s.keepOpen("serve handovers", zapcore.DebugLevel,
		func(ctx context.Context) (cluster.Subscription, error) { return s.bus.ServeHandovers(ctx, s.asked) },
		func() {})
}

// asked records a node's ask for a product this node may own, keeping the
// highest-ranked asker. It runs on the subscription's goroutine and never
// waits on a feed.
func (s *sharing) asked(productID int64, from string) {
	f := s.h.feed(productID)
	if f == nil || f.share == nil {
		return
	}
	sh := f.share
	now := time.Now()
	sh.mu.Lock()
	if sh.askedBy == "" || from == sh.askedBy || now.Sub(sh.askedAt) > s.askFresh() || cluster.Outranks(productID, from, sh.askedBy) {
		sh.askedBy, sh.askedAt = from, now
	}
	sh.mu.Unlock()
	sh.wake()
}

// askFresh is how long an ask counts: its node asks again every lease
// while it should, so an older one is from a node that stopped.
func (s *sharing) askFresh() time.Duration { return 2 * s.leaseTime() }

// pendingAsk is the best node that asked for the product lately, "" for
// none.
func (sh *feedShare) pendingAsk() string {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.askedBy != "" && time.Since(sh.askedAt) > sh.s.askFresh() {
		sh.askedBy = ""
	}
	return sh.askedBy
}

// dropAsk forgets the asks so far.
func (sh *feedShare) dropAsk() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.askedBy = ""
}

// askWake is when an owner with an ask pending may hand over, zero for
// none: the asks are kept until the owner has held the product long
// enough, so that the best asker, not the latest, gets it.
func (f *feed) askWake() time.Time {
	sh := f.share
	if sh.s.alone.Load() || sh.pendingAsk() == "" {
		return time.Time{}
	}
	return sh.ownedAt.Add(sh.s.minHold())
}

// settled reports whether the lot must stay with its owner: it is over,
// or in or near its closing window.
func (f *feed) settled() bool {
	if over(&f.product) {
		return true
	}
	if f.product.CloseTime.IsZero() {
		return false
	}
	near := time.Duration(f.cfg.Poll.ClosingWindow) + time.Duration(f.cfg.StreamClosingMargin)
	return f.product.TimeRemaining(f.h.clock.Now()) <= near
}

// answerAsk hands the owned product to the best node that asked for it,
// if it outranks this one and the hysteresis allows; an ask refused
// comes again a lease later while its node still should ask.
func (f *feed) answerAsk() {
	sh := f.share
	to := sh.pendingAsk()
	switch {
	case to == "" || sh.role != roleOwner:
	case time.Since(sh.ownedAt) < sh.s.minHold():
		// Kept until then (askWake), for the best asker by then.
	case !cluster.Outranks(f.id, to, sh.s.bus.Node()) || f.settled():
		sh.dropAsk()
	default:
		sh.dropAsk()
		f.handOver(to)
	}
}

// handOver stops owning the product, as stepDown does, and hands its
// lease to node to, which claims it at once.
func (f *feed) handOver(to string) {
	sh := f.share
	sh.role, sh.lease, sh.app = roleReader, nil, nil
	sh.held.Store(nil)
	sh.setOwner(to)
	f.h.markReader(f, true)
	f.closeStream()
	f.nextPoll = time.Time{}
	f.reconcileAfter = false
	sh.claimAt = time.Now().Add(sh.s.claimFallback())
	ctx, cancel := context.WithTimeout(context.Background(), sh.s.bus.RenewEvery())
	err := sh.s.keeper.HandOver(ctx, f.id, to)
	cancel()
	reason := HandoverHanded
	switch {
	case errors.Is(err, cluster.ErrDeposed):
		reason = HandoverDeposed
		f.log.Warn("cluster: another node took the product's lease as it was being handed over")
	case err != nil:
		f.log.Warn("cluster: handing the product over failed; it is free for any node", zap.String("to", to), zap.Error(err))
	default:
		f.log.Info("cluster: handed the product over to the node ranked first for it", zap.String("to", to))
	}
	if hook := f.h.hooks.Ownership; hook != nil {
		hook(f.id, false, reason)
	}
}

// askDue is when a reader should next ask the product's owner for it: a
// lease into its local interest, then every lease; zero when it should
// not (no interest, no owner known, or the owner ranks above this node).
func (f *feed) askDue() time.Time {
	sh := f.share
	if sh.role != roleReader || sh.interestSince.IsZero() {
		return time.Time{}
	}
	owner, handed := sh.keyHolder()
	if owner == "" || handed || !cluster.Outranks(f.id, sh.s.bus.Node(), owner) {
		return time.Time{}
	}
	at := sh.interestSince.Add(sh.s.askAfter())
	if sh.askAt.After(at) {
		at = sh.askAt
	}
	return at
}

// maybeAsk asks the owner for the product when askDue says so.
func (f *feed) maybeAsk() {
	sh := f.share
	at := f.askDue()
	if at.IsZero() || time.Now().Before(at) || f.settled() {
		return
	}
	owner, _ := sh.keyHolder()
	sh.askAt = time.Now().Add(sh.s.leaseTime())
	ctx, cancel := context.WithTimeout(f.ctx, sh.s.bus.RenewEvery())
	defer cancel()
	if err := sh.s.bus.AskHandover(ctx, f.id, owner); err != nil {
		f.log.Debug("cluster: asking the owner for the product failed", zap.String("owner", owner), zap.Error(err))
	}
}

// followInterest keeps when the feed's current spell of local interest
// began, for askDue.
func (f *feed) followInterest() {
	sh := f.share
	switch {
	case !f.lingerSince.IsZero():
		sh.interestSince = time.Time{}
	case sh.interestSince.IsZero():
		sh.interestSince = time.Now()
	}
}
