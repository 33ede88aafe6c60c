package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/nellis"
)

// feed is the one live view of a product. Its goroutine (run) owns the
// upstream side: stream, breaker, polls, linger. What Hub methods read from
// other goroutines sits under mu.
type feed struct {
	h     *Hub
	id    int64
	epoch string
	log   *zap.Logger

	ctx    context.Context // cancelled to end the feed; fetches run under it
	cancel context.CancelFunc

	// streamCh carries the stream's messages to run; made when the feed
	// first opens a stream (streamRoom), nil until then: thousands of lots
	// are only ever polled.
	streamCh chan streamMsg
	// held is the stream's change merged but not yet published while the
	// feed takes a backlog of events in one go (handleStreamBacklog).
	held    *heldChange
	fetchCh chan fetchResult
	kick    chan struct{} // interest changed; buffered 1
	cfgCh   chan Config   // the latest config; buffered 1

	mu      sync.Mutex
	subs    map[uint64]Subscriber
	subList []Subscriber // rebuilt on every change of subs, never mutated
	nextSub uint64
	last    *Change
	history ring
	status  FeedStatus // the fields run maintains
	stream  Stream     // for LastByte and LastEvent in Status
	// pending is the fetch waiting for the limiter, to raise.
	pending pendingFetch
	// fresh is when the last snapshot succeeded, for the staleness;
	// streamedUntil when the last healthy stream closed: the lot's state
	// was current until then.
	fresh, streamedUntil time.Time

	autoBid atomic.Bool // an AutoBidder subscribes
	slot    slotClaim   // guarded by Hub.mu

	// Owned by run.
	cfg      Config
	breaker  *fallback.Breaker
	sched    fallback.Schedule
	product  nellis.Product
	live     *liveStream // nil when no stream is open
	nextGen  uint64
	capped   bool // wants a stream but the hub gives it none now
	fetching bool
	// reconcileAfter asks for a reconcile once the fetch in flight is done:
	// that fetch may have started before the gap it should heal.
	reconcileAfter bool
	lastFetchAt    time.Time
	nextPoll       time.Time // zero: no poll planned
	lingerSince    time.Time // zero: not lingering
	failing        bool      // snapshots are failing
	fetchKind      fetchKind // of the fetch in flight
	// users is the last state published of each owner's (Change.User),
	// so that only news about a user makes a change.
	users map[string]UserState
	// anonymousFailed: the last fetch failed with cookies and without;
	// the next is not tried again without them.
	anonymousFailed bool
	decodeErrors    int // undecodable upstream events so far
	fetches         sync.WaitGroup

	// share is the feed's side of the cluster (hub/shared.go); nil on a
	// single node.
	share *feedShare
}

func newFeed(h *Hub, id int64, cfg Config) *feed {
	ctx, cancel := context.WithCancel(context.Background())
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	f := &feed{
		h:       h,
		id:      id,
		epoch:   hex.EncodeToString(b[:]),
		log:     h.log.With(zap.Int64("product_id", id)),
		ctx:     ctx,
		cancel:  cancel,
		fetchCh: make(chan fetchResult, 1),
		kick:    make(chan struct{}, 1),
		cfgCh:   make(chan Config, 1),
		subs:    make(map[uint64]Subscriber),
		users:   make(map[string]UserState),
		history: newRing(cfg.History),
		cfg:     cfg,
		sched:   fallback.Schedule{Config: cfg.Poll, Rand: h.rand},
	}
	f.product.ID = id
	f.status = FeedStatus{ProductID: id, Epoch: f.epoch, Source: string(SourcePoll)}
	f.breaker = f.newBreaker()
	if h.sharing != nil {
		f.share = newFeedShare(h.sharing)
		f.slot.reader = true // until it owns; newFeed runs under h.mu
	}
	return f
}

func (f *feed) newBreaker() *fallback.Breaker {
	return fallback.NewBreaker(f.cfg.Breaker, f.h.clock.Now(), f.h.rand, f.onTransition)
}

// run is the feed's goroutine. It returns once the feed has lingered without
// subscribers or the hub closed it, leaving no stream or fetch behind.
func (f *feed) run() {
	defer f.fetches.Wait()
	defer f.cancel()
	defer f.leaveShared() // after the stream closed
	defer f.closeStream()

	if f.share != nil {
		f.joinShared() // a reader until it claims the product
	} else {
		f.startFetch(fetchInitial)
	}
	for {
		now := f.h.clock.Now()
		if f.lingerDue(now) {
			if f.h.retire(f) {
				return
			}
			f.lingerSince = time.Time{}
			f.handleInterest(now)
		}
		f.tickShared()
		f.tick(now)
		f.syncStream()
		f.reprioritize(now)
		f.publishStatus()
		if !f.wait(f.nextWake()) {
			return
		}
	}
}

// wait handles one input, or the timer at `at`; false means the feed is
// cancelled.
func (f *feed) wait(at time.Time) bool {
	var timerC <-chan time.Time
	if !at.IsZero() {
		t := f.h.clock.NewTimer(at)
		defer t.Stop()
		timerC = t.C()
	}
	// The cluster's leases run on the real clock, whatever f.h.clock is.
	var shareC <-chan struct{}
	var shareTimerC <-chan time.Time
	if f.share != nil {
		shareC = f.share.wakeCh
		if at := f.sharedWake(); !at.IsZero() {
			t := time.NewTimer(time.Until(at))
			defer t.Stop()
			shareTimerC = t.C
		}
	}
	select {
	case <-f.ctx.Done():
		return false
	case m := <-f.streamCh:
		f.handleStreamBacklog(m)
	case r := <-f.fetchCh:
		f.handleFetch(r)
	case <-f.kick:
		f.handleInterest(f.h.clock.Now())
	case cfg := <-f.cfgCh:
		f.applyConfig(cfg)
	case <-timerC:
	case <-shareC:
	case <-shareTimerC:
	}
	return true
}

// nextWake is the earliest instant something is due by time alone.
func (f *feed) nextWake() time.Time {
	var at time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if !f.lingerSince.IsZero() {
		earliest(f.lingerSince.Add(time.Duration(f.cfg.Linger)))
	}
	if !f.fetching && f.acting() {
		earliest(f.nextPoll)
	}
	earliest(f.closingOpens(f.h.clock.Now()))
	if f.breakerActive() {
		earliest(f.breaker.Deadline())
	}
	return at
}

func (f *feed) lingerDue(now time.Time) bool {
	return !f.lingerSince.IsZero() && !now.Before(f.lingerSince.Add(time.Duration(f.cfg.Linger)))
}

// breakerActive: the breaker is judging a stream, or waiting to probe one.
func (f *feed) breakerActive() bool {
	return f.acting() && f.followsSSE() && !over(&f.product) && (f.live != nil || f.breaker.State() != fallback.BreakerClosed)
}

func (f *feed) tick(now time.Time) {
	if f.breakerActive() {
		f.breaker.Tick(now)
	}
	if f.acting() && !f.fetching && !f.nextPoll.IsZero() && !now.Before(f.nextPoll) {
		f.startFetch(fetchPoll)
	}
}

// handleInterest starts lingering when the last subscriber left and stops
// when one came back.
func (f *feed) handleInterest(now time.Time) {
	f.mu.Lock()
	n := len(f.subs)
	f.mu.Unlock()
	switch {
	case n == 0 && f.lingerSince.IsZero():
		f.lingerSince = now
	case n > 0:
		f.lingerSince = time.Time{}
	}
}

func (f *feed) applyConfig(cfg Config) {
	now := f.h.clock.Now()
	wasSSE := f.followsSSE()
	f.cfg = cfg
	f.sched.Config = cfg.Poll
	f.breaker.SetConfig(cfg.Breaker)
	if !wasSSE && f.followsSSE() {
		f.breaker = f.newBreaker()
	}
	if f.live != nil {
		f.live.stream.UpdateConfig(cfg.SSE)
	}
	f.replan(now)
}

func (f *feed) situation(now time.Time) fallback.Situation {
	return fallback.Situation{
		StreamHealthy: f.live != nil && f.live.healthy,
		Over:          over(&f.product),
		CloseKnown:    !f.product.CloseTime.IsZero(),
		TimeLeft:      f.product.TimeRemaining(now),
	}
}

// replan sets the next poll from the last one and the situation now. While
// a healthy stream makes polls rare, the first poll of the closing window
// is brought forward to its start.
func (f *feed) replan(now time.Time) {
	if f.fetching {
		return // handleFetch replans when the fetch is done
	}
	sit := f.situation(now)
	d, ok := f.sched.Next(sit)
	if !ok {
		f.nextPoll = time.Time{}
		return
	}
	base := f.lastFetchAt
	if base.IsZero() {
		base = now
	}
	at := base.Add(d)
	if sit.CloseKnown && !sit.Closing(f.cfg.Poll) {
		if w := f.product.CloseTime.Add(-time.Duration(f.cfg.Poll.ClosingWindow)); w.Before(at) {
			at = w
		}
	}
	f.nextPoll = at
}

// apply merges a patch and publishes a change if anything visible differs:
// the shared product, or the standing of the user whose cookies fetched it
// (user, nil for none). It reports whether the shared product changed.
func (f *feed) apply(p *nellis.Patch, user *UserState, receivedAt time.Time, src Source) bool {
	if !f.acting() {
		return false // a fetch that ended after the feed stopped owning
	}
	if p.ProductID != 0 && p.ProductID != f.id {
		f.log.Warn("patch for another product dropped", zap.Int64("patch_product_id", p.ProductID), zap.String("source", string(src)))
		return false
	}
	next, changed := merge(f.product, p, f.h.serverTime(receivedAt))
	if news := f.userNews(user); !changed && !news {
		return false
	}
	wasOver := over(&f.product)
	f.product = next
	if f.held != nil && user == nil {
		*f.held = heldChange{src: src, receivedAt: receivedAt, due: true}
	} else {
		f.publishHeld()
		f.publish(src, receivedAt, user)
	}
	if !changed {
		return false
	}
	if !wasOver && over(&next) {
		f.log.Info("lot over", zap.String("source", string(src)), zap.Float64("final_bid", next.CurrentBid))
		f.replan(f.h.clock.Now())
	}
	return true
}

// maxOwners bounds the user states a feed remembers. Keys of cookies that
// were replaced stay behind; forgetting them all costs at most one change
// per user that is no news.
const maxOwners = 64

// userNews reports whether u differs from the last state published of its
// owner, and remembers it. A nil u is no news.
func (f *feed) userNews(u *UserState) bool {
	if u == nil {
		return false
	}
	if last, ok := f.users[u.Owner]; ok && last == *u {
		return false
	}
	if len(f.users) >= maxOwners {
		clear(f.users)
	}
	f.users[u.Owner] = *u
	return true
}

// publish records the current product as the next change and hands it to
// every subscriber. Delivery happens outside mu, so a Deliver that calls
// back into the hub cannot deadlock; order is kept because only run
// publishes.
func (f *feed) publish(src Source, receivedAt time.Time, user *UserState) {
	body, err := sharedJSON(f.product)
	if err != nil {
		// Only a malformed Location can fail; drop it rather than the change.
		f.log.Error("product not encodable; location dropped", zap.Error(err))
		f.product.Location = nil
		body, _ = sharedJSON(f.product)
	}
	epoch, seq := f.epoch, uint64(1)
	if f.last != nil {
		seq = f.last.Seq + 1
	}
	if f.share != nil {
		// In a cluster the log decides: stored there first, or not at all.
		var ok bool
		if epoch, seq, ok = f.appendShared(src, receivedAt); !ok {
			return
		}
	}
	f.deliver(&Change{
		ProductID:  f.id,
		Epoch:      epoch,
		Seq:        seq,
		Source:     src,
		ReceivedAt: receivedAt,
		Product:    f.product,
		JSON:       body,
		User:       user,
	})
}

// deliver records c as the latest change and hands it to every
// subscriber; only run calls it.
func (f *feed) deliver(c *Change) {
	f.mu.Lock()
	f.accept(c)
	subs := f.subList
	f.mu.Unlock()

	for _, s := range subs {
		s.Deliver(c)
	}
	if hook := f.h.hooks.Published; hook != nil {
		hook(c)
	}
}

// accept makes c the latest change of the history; the caller holds mu.
// Seqs in the history stay consecutive within one epoch: a change of
// another epoch, or after a gap (a cluster log read past its depth),
// starts it again, and Since then sends those clients the full state.
func (f *feed) accept(c *Change) {
	switch {
	case c.Epoch != f.epoch:
		f.epoch = c.Epoch
		f.status.Epoch = c.Epoch
		f.history = newRing(len(f.history.buf))
	case f.last != nil && c.Seq != f.last.Seq+1:
		f.history = newRing(len(f.history.buf))
	}
	f.last = c
	f.history.push(c)
}

// sharedJSON encodes p without the fields each viewer sees their own way
// (Change.JSON).
func sharedJSON(p nellis.Product) ([]byte, error) {
	p.NextBid, p.MinimumBid = 0, 0 // omitted when zero
	return json.Marshal(p)
}

func (f *feed) onTransition(t fallback.Transition) {
	fields := []zap.Field{zap.String("from", t.From.String()), zap.String("to", t.To.String()), zap.String("reason", t.Reason), zap.Int("failures", t.Failures)}
	// A long outage cycles open, half-open, open every few minutes per
	// product: only leaving and regaining the stream are worth a line.
	switch {
	case t.From == fallback.BreakerClosed && t.To == fallback.BreakerOpen:
		f.log.Warn("stream breaker open; polling", append(fields, zap.Time("probe_at", t.ProbeAt))...)
	case t.To == fallback.BreakerClosed:
		f.log.Info("stream breaker closed; back on sse", fields...)
	default:
		f.log.Debug("stream breaker", fields...)
	}
	if hook := f.h.hooks.BreakerTransition; hook != nil {
		hook(f.id, t)
	}
	if t.To == fallback.BreakerOpen {
		if hook := f.h.hooks.FallbackActivated; hook != nil {
			hook(f.id)
		}
		// Heal the gap at once rather than at the next poll.
		f.startFetch(fetchReconcile)
	}
}

func (f *feed) publishStatus() {
	sessionID := ""
	source := SourcePoll
	if f.live != nil {
		sessionID = f.live.stream.SessionID()
		if f.live.healthy {
			source = SourceSSE
		}
	}
	if f.share != nil && f.share.role == roleReader {
		source = StatusSourceLog
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.Source = string(source)
	f.status.SessionID = sessionID
	f.status.Breaker = f.breaker.State().String()
	if !f.followsSSE() {
		f.status.Breaker = "disabled"
	}
	f.status.StreamCapped = f.capped
	f.status.LingerUntil = time.Time{}
	if !f.lingerSince.IsZero() {
		f.status.LingerUntil = f.lingerSince.Add(time.Duration(f.cfg.Linger))
	}
	f.status.NextPoll = time.Time{}
	if !f.fetching && f.acting() {
		f.status.NextPoll = f.nextPoll
	}
	if f.share != nil {
		f.status.Role = f.share.role.String()
		f.status.Owner = f.share.knownOwner()
	}
}
