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

// pendingFetch is the fetch waiting for the limiter, guarded by feed.mu:
// the feed's goroutine raises it as the lot's need grows (raiseFetch), and
// Hub.Prioritize when a user starts to monitor the lot.
type pendingFetch struct {
	req *fallback.Request // nil when no fetch waits
	// want is the priority the lot's need asks (fetchPriority); written
	// by the feed's goroutine only. The request waits at Background
	// instead while background is set: no user monitors the lot.
	want       fallback.Priority
	background bool
}

// fetchPriority is the limiter priority a fetch of kind deserves now. A
// lot in its closing window without a healthy stream has only its polls:
// they go first, and a waiting fetch is raised when the window opens
// (reprioritize). A healthy stream's own polls are insurance: with
// poll_rate short, every lot that has only its polls goes before them.
func (f *feed) fetchPriority(kind fetchKind, now time.Time) fallback.Priority {
	sit := f.situation(now)
	known := !f.fresh.IsZero() // written on this goroutine only
	switch {
	case kind == fetchPoll && sit.StreamHealthy && known:
		return fallback.Insurance
	case sit.Closing(f.cfg.Poll) && !sit.Over:
		return fallback.Urgent
	case kind == fetchInitial || !known:
		// Until a snapshot succeeds, its retries are first snapshots too.
		return fallback.First
	}
	return fallback.Routine
}

// startFetch fetches the snapshot in a goroutine the feed waits for on
// exit. One fetch runs at a time; asking for a reconcile while one waits
// raises the waiting one to the reconcile's priority.
func (f *feed) startFetch(kind fetchKind) {
	now := f.h.clock.Now()
	if f.fetching {
		if kind == fetchReconcile {
			if !f.pendingStarts() {
				f.reconcileAfter = true
			}
			f.raiseFetch(f.fetchPriority(kind, now))
		}
		return
	}
	f.fetching = true
	f.fetchKind = kind
	if kind != fetchPoll {
		f.h.scratch.fetches.oneOffs.Add(1)
	}
	want := f.fetchPriority(kind, now)
	// A product no user monitors (only subscribe sockets want it, or the
	// feed lingers) is polled in the background, behind every monitored
	// product's polls, until Prioritize says a user monitors it now.
	pri, background := want, false
	if f.h.monitored != nil && !f.h.monitored(f.id) {
		pri, background = fallback.Background, true
	}
	req := f.h.limiter.NewRequest(pri)
	f.mu.Lock()
	f.pending = pendingFetch{req: req, want: want, background: background}
	f.mu.Unlock()
	timeout := f.cfg.SnapshotTimeout
	anonymous := !f.anonymousFailed
	f.fetches.Add(1)
	go func() {
		defer f.fetches.Done()
		res := f.fetch(kind, req, timeout, anonymous)
		select {
		case f.fetchCh <- res:
		case <-f.ctx.Done():
		}
	}()
}

// pendingStarts makes the fetch still waiting for the limiter a reconcile
// and reports true; false when no fetch waits (one in flight may have
// started before the gap it should heal). A fetch that has not started
// sees the gap: a second one after it would only take another turn of
// poll_rate, and on an auction night a lot given a stream or losing one
// (a dozen a second) always has a poll waiting its turn, so each change
// of source would cost two turns, which the polled lots' intervals pay.
func (f *feed) pendingStarts() bool {
	f.mu.Lock()
	waiting := f.pending.req != nil && f.pending.req.Waiting()
	f.mu.Unlock()
	if !waiting {
		return false
	}
	if f.fetchKind == fetchPoll {
		// A poll that became a heal is a one-off fetch for the budget.
		f.fetchKind = fetchReconcile
		f.h.scratch.fetches.oneOffs.Add(1)
	}
	return true
}

// raiseFetch raises the waiting fetch to pri, if that is more than it asks.
func (f *feed) raiseFetch(pri fallback.Priority) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &f.pending
	if p.req == nil || pri <= p.want {
		return
	}
	p.want = pri
	if !p.background {
		p.req.Raise(pri)
	}
}

// reprioritize raises the waiting fetch to what the lot needs now: its
// closing window opened, or its stream failed, while it waited.
func (f *feed) reprioritize(now time.Time) {
	if !f.fetching {
		return
	}
	pri := f.fetchPriority(f.fetchKind, now)
	if f.reconcileAfter {
		pri = max(pri, f.fetchPriority(fetchReconcile, now))
	}
	if pri > f.pending.want { // want is written only on this goroutine
		f.raiseFetch(pri)
	}
}

// closingOpens is when the lot's closing window opens, while a fetch waits
// below Urgent for it; zero otherwise. The feed wakes then to raise it.
func (f *feed) closingOpens(now time.Time) time.Time {
	if !f.fetching || f.pending.want >= fallback.Urgent || f.product.CloseTime.IsZero() || over(&f.product) {
		return time.Time{}
	}
	at := f.product.CloseTime.Add(-time.Duration(f.cfg.Poll.ClosingWindow))
	if !at.After(now) {
		return time.Time{}
	}
	return at
}

// fetch fetches one snapshot once req gets its permit. anonymous allows
// fetching it again without the cookies when it fails with them.
func (f *feed) fetch(kind fetchKind, req *fallback.Request, timeout time.Duration, anonymous bool) fetchResult {
	res := fetchResult{kind: kind}
	permit, err := req.Wait(f.ctx)
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
	if f.fetchKind == fetchReconcile {
		res.kind = fetchReconcile // a waiting poll asked to heal a gap (pendingStarts)
	}
	f.fetching = false
	f.h.scratch.fetches.done.Add(1)
	f.mu.Lock()
	f.pending = pendingFetch{}
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
	if p := &f.pending; p.req != nil && p.background {
		p.background = false
		p.req.Raise(p.want)
	}
}
