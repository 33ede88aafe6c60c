package hub

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/nellis"
)

type fetchKind int

const (
	fetchInitial   fetchKind = iota // the first state: the stream never sends it
	fetchPoll                       // scheduled: fallback, safety net or hedge
	fetchReconcile                  // healing a possible gap
)

func (k fetchKind) source() Source {
	if k == fetchReconcile {
		return SourceReconcile
	}
	return SourcePoll
}

type fetchResult struct {
	kind fetchKind
	snap nellis.Snapshot
	err  error
	took time.Duration
}

// startFetch fetches the snapshot in a goroutine the feed waits for on
// exit. One fetch runs at a time.
func (f *feed) startFetch(kind fetchKind) {
	if f.fetching {
		if kind == fetchReconcile {
			f.reconcileAfter = true
		}
		return
	}
	f.fetching = true
	pri := fallback.Urgent
	if kind == fetchPoll && !f.situation(f.h.clock.Now()).Closing(f.cfg.Poll) {
		pri = fallback.Routine
	}
	// A product no user monitors (only subscribe sockets want it, or the
	// feed lingers) is polled in the background, behind every monitored
	// product's polls, until Prioritize says a user monitors it now.
	wanted, promote := pri, (chan struct{})(nil)
	if f.h.monitored != nil && !f.h.monitored(f.id) {
		pri, promote = fallback.Background, make(chan struct{})
	}
	f.mu.Lock()
	f.promote = promote
	f.mu.Unlock()
	timeout := f.cfg.SnapshotTimeout
	f.fetches.Add(1)
	go func() {
		defer f.fetches.Done()
		res := f.fetch(kind, pri, promote, wanted, timeout)
		select {
		case f.fetchCh <- res:
		case <-f.ctx.Done():
		}
	}()
}

func (f *feed) fetch(kind fetchKind, pri fallback.Priority, promote <-chan struct{}, wanted fallback.Priority, timeout time.Duration) fetchResult {
	res := fetchResult{kind: kind}
	permit, err := f.h.limiter.AcquirePromotable(f.ctx, pri, promote, wanted)
	if err != nil {
		res.err = err
		return res
	}
	cookies := ""
	if f.h.cookies != nil {
		cookies = f.h.cookies(f.id)
	}
	start := f.h.clock.Now()
	res.snap, res.err = f.snapshot(timeout, cookies)
	permit.Done(res.err)
	res.took = f.h.clock.Now().Sub(start)
	return res
}

// snapshot calls the fetcher, turning a panic in it into an error.
func (f *feed) snapshot(timeout time.Duration, cookies string) (snap nellis.Snapshot, err error) {
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("snapshot fetcher panicked", zap.Any("panic", r), zap.StackSkip("stack", 1))
			err = fmt.Errorf("snapshot fetcher panicked: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(f.ctx, timeout)
	defer cancel()
	return f.h.snapshots.Snapshot(ctx, f.id, cookies)
}

func (f *feed) handleFetch(res fetchResult) {
	f.fetching = false
	f.mu.Lock()
	f.promote = nil
	f.mu.Unlock()
	if f.ctx.Err() != nil {
		return
	}
	now := f.h.clock.Now()
	f.lastFetchAt = now
	src := res.kind.source()
	if res.err == nil && res.snap.Patch.ProductID != 0 && res.snap.Patch.ProductID != f.id {
		res.err = fmt.Errorf("snapshot is of product %d, want %d", res.snap.Patch.ProductID, f.id)
	}
	if res.err == nil && res.snap.Patch.Empty() {
		res.err = fmt.Errorf("snapshot of product %d carries no field", f.id)
	}
	if res.err != nil {
		f.snapshotFailed(res.err)
	} else {
		f.snapshotRecovered()
		at := res.snap.ReceivedAt
		if at.IsZero() {
			at = now
		}
		if f.apply(&res.snap.Patch, at, src) && src == SourceReconcile {
			if hook := f.h.hooks.ReconcileChange; hook != nil {
				hook(f.id)
			}
			f.log.Info("gap healed", zap.Float64("current_bid", f.product.CurrentBid), zap.Int("bid_count", f.product.BidCount))
		}
	}
	if hook := f.h.hooks.PollResult; hook != nil {
		hook(f.id, src, res.took, res.err)
	}
	if f.reconcileAfter {
		f.reconcileAfter = false
		f.startFetch(fetchReconcile)
		return
	}
	f.replan(now)
}

// snapshotFailed marks the feed degraded. It logs only the first failure of
// a run of them: the poll loop retries every second or two.
func (f *feed) snapshotFailed(err error) {
	if !f.failing {
		f.log.Warn("snapshot failing; feed degraded", zap.Error(err))
	}
	f.failing = true
	f.mu.Lock()
	f.status.Degraded = "snapshot failing"
	f.status.LastError = err.Error()
	f.mu.Unlock()
}

func (f *feed) snapshotRecovered() {
	if !f.failing {
		return
	}
	f.failing = false
	f.log.Info("snapshot recovered")
	f.mu.Lock()
	f.status.Degraded = ""
	f.mu.Unlock()
}

// Prioritize tells the hub that a user now monitors productID: a snapshot
// of it waiting in the background (see Deps.Monitored) takes its place
// among the monitored products' polls at once.
func (h *Hub) Prioritize(productID int64) {
	f := h.feed(productID)
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.promote != nil {
		close(f.promote)
		f.promote = nil
	}
}
