package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	// owner is whose cookies fetched snap ("" for an anonymous fetch).
	owner string
	// badOwner is whose cookies failed before snap was fetched
	// anonymously, and cookieErr how they failed.
	badOwner  string
	cookieErr error
	// triedAnonymous: the fetch with cookies failed and was tried again
	// without them.
	triedAnonymous bool
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
	anonymous := !f.anonymousFailed
	f.fetches.Add(1)
	go func() {
		defer f.fetches.Done()
		res := f.fetch(kind, pri, promote, wanted, timeout, anonymous)
		select {
		case f.fetchCh <- res:
		case <-f.ctx.Done():
		}
	}()
}

// fetch fetches one snapshot. anonymous allows fetching it again without
// the cookies when it fails with them.
func (f *feed) fetch(kind fetchKind, pri fallback.Priority, promote <-chan struct{}, wanted fallback.Priority, timeout time.Duration, anonymous bool) fetchResult {
	res := fetchResult{kind: kind}
	permit, err := f.h.limiter.AcquirePromotable(f.ctx, pri, promote, wanted)
	if err != nil {
		res.err = err
		return res
	}
	owner, cookies := "", ""
	if f.h.cookies != nil {
		owner, cookies = f.h.cookies(f.id)
	}
	if cookies == "" {
		owner = ""
	}
	start := f.h.clock.Now()
	res.snap, res.err = f.snapshot(timeout, cookies)
	if anonymous && res.err != nil && cookies != "" && f.worthAnonymous(res.err) {
		// One user's bad cookies must not leave the lot stale for
		// everyone: the shared state needs no cookies.
		res.triedAnonymous = true
		if snap, err := f.snapshot(timeout, ""); err == nil {
			res.badOwner, res.cookieErr = owner, res.err
			res.snap, res.err, owner = snap, nil, ""
		}
	}
	res.owner = owner
	permit.Done(res.err)
	res.took = f.h.clock.Now().Sub(start)
	return res
}

// worthAnonymous reports whether a snapshot that failed with a user's
// cookies is worth fetching again without them. Not after the feed ended
// or a timeout (the site is slow, not the cookies bad), nor after a 429, a
// 5xx or a Retry-After: those say the site is in trouble, whoever asks.
func (f *feed) worthAnonymous(err error) bool {
	if f.ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var status *nellis.StatusError
	if errors.As(err, &status) {
		return status.Code < 500 && status.Code != http.StatusTooManyRequests && status.RetryAfter == 0
	}
	return true
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
	// While the anonymous retry fails too, the site is at fault, not the
	// cookies: retrying would only double the requests.
	f.anonymousFailed = res.triedAnonymous && res.err != nil
	if res.badOwner != "" {
		// The error is the client's, which never quotes the cookies.
		f.log.Warn("snapshot with a user's cookies failed; fetched anonymously, and those cookies are set aside until they are synced again", zap.Error(res.cookieErr))
		if f.h.cookiesBad != nil {
			f.h.cookiesBad(f.id, res.badOwner)
		}
	}
	if res.err != nil {
		f.snapshotFailed(res.err)
	} else {
		f.snapshotRecovered()
		f.mu.Lock()
		f.fresh = now
		f.mu.Unlock()
		at := res.snap.ReceivedAt
		if at.IsZero() {
			at = now
		}
		user := newUserState(res.owner, res.snap.Patch.User)
		res.snap.Patch.User = nil
		if f.apply(&res.snap.Patch, user, at, src) && src == SourceReconcile {
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
