package hub

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/clock"
	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/sseupstream"
)

// Hub holds one feed per product with interest, for the whole process.
// Every method is safe for concurrent use.
type Hub struct {
	snapshots  SnapshotFetcher
	cookies    func(productID int64) (owner, cookies string)
	cookiesBad func(productID int64, owner string)
	monitored  func(productID int64) bool
	watching   func(productID int64) int
	openStream StreamOpener
	clock      clock.Clock
	rand       func() float64
	serverTime func(time.Time) time.Time
	log        *zap.Logger
	hooks      Hooks
	limiter    *fallback.Limiter
	sharing    *sharing // nil on a single node

	rebalanceKick chan struct{} // buffered 1: a feed's claim changed
	stop          chan struct{} // closed by Close: ends the rebalancer
	scratch       rebalanceScratch

	mu      sync.Mutex
	cfg     Config
	feeds   map[int64]*feed
	streams int // open streams, at most cfg.MaxStreams (see slotClaim)
	budget  PollBudget
	// rebalancing: the rebalancer runs; it starts with the first feed.
	rebalancing bool
	closed      bool
	running     sync.WaitGroup // one per feed goroutine, and the rebalancer
}

// New returns a hub; feeds start on the first Subscribe. cfg gets
// WithDefaults; validate it first. deps.Snapshots is required.
func New(cfg Config, deps Deps) *Hub {
	h := &Hub{
		snapshots:  deps.Snapshots,
		cookies:    deps.Cookies,
		cookiesBad: deps.CookiesFailed,
		monitored:  deps.Monitored,
		watching:   deps.Watchers,
		openStream: deps.OpenStream,
		clock:      deps.Clock,
		rand:       deps.Rand,
		serverTime: deps.ServerTime,
		log:        deps.Logger,
		hooks:      deps.Hooks,
		feeds:      make(map[int64]*feed),

		rebalanceKick: make(chan struct{}, 1),
		stop:          make(chan struct{}),
	}
	if h.snapshots == nil {
		h.snapshots = missingFetcher{}
	}
	if h.openStream == nil {
		h.openStream = OpenSSE
	}
	if h.clock == nil {
		h.clock = clock.System{}
	}
	if h.rand == nil {
		h.rand = rand.Float64
	}
	if h.serverTime == nil {
		h.serverTime = func(t time.Time) time.Time { return t }
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if deps.Shared != nil {
		h.sharing = newSharing(h, deps.Shared)
		// The bus is followed from the start, not with the first feed: a
		// node with no feed is cut off too, and its metric must say so.
		h.running.Add(1)
		go func() {
			defer h.running.Done()
			h.sharing.watchBus()
		}()
	}
	h.cfg = h.prepare(cfg, sseupstream.Config{})
	h.limiter = fallback.NewLimiter(h.cfg.Limiter, h.clock)
	return h
}

// prepare fills in cfg's defaults, keeping the previous SSE HTTP client and
// logger when the new config has none, so a reload reuses connections.
func (h *Hub) prepare(cfg Config, prevSSE sseupstream.Config) Config {
	cfg = cfg.WithDefaults()
	if cfg.SSE.HTTPClient == nil {
		cfg.SSE.HTTPClient = prevSSE.HTTPClient
	}
	if cfg.SSE.Logger == nil {
		cfg.SSE.Logger = prevSSE.Logger
	}
	if cfg.SSE.Logger == nil {
		cfg.SSE.Logger = h.log.Named("sse")
	}
	cfg.SSE = cfg.SSE.WithDefaults()
	return cfg
}

// Subscribe registers interest in productID: the first creates its feed
// (one stream if allowed, and an immediate snapshot); s then receives every
// change until the returned func is called. After the last unsubscribe the
// feed lingers for Config.Linger, then closes.
//
// The Deliver contract: it is called from the feed's goroutine, never under
// a hub lock, and must never wait on a client. The feed is blocked until it
// returns: a slow Deliver delays that product's other subscribers, polls
// and stream events. The relay's Deliver writes to the sockets itself, one
// non-blocking write each, and with many watchers fans those writes out
// across the cores; it returns once every socket has been written to or
// queued for (wsrelay/relay.go, deliver).
// A change may reach s with a Seq it already got from State: ignore Seqs at
// or below the one known.
//
// After Close, or for a nil s, Subscribe does nothing and returns a no-op.
func (h *Hub) Subscribe(productID int64, s Subscriber) (unsubscribe func()) {
	if s == nil {
		return func() {}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return func() {}
	}
	f, ok := h.feeds[productID]
	if !ok {
		f = newFeed(h, productID, h.cfg)
		h.feeds[productID] = f
		h.startRebalancer()
		h.startSharing()
		h.kickRebalance() // one more lot to budget for
	}
	f.mu.Lock()
	key := f.nextSub
	f.nextSub++
	f.subs[key] = s
	f.rebuildSubs()
	f.mu.Unlock()
	if ok {
		f.poke()
	} else {
		h.running.Add(1)
		go func() {
			defer h.running.Done()
			defer h.recoverFeed(f)
			f.run()
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, key)
			f.rebuildSubs()
			f.mu.Unlock()
			f.poke()
		})
	}
}

// rebuildSubs replaces subList; the caller holds f.mu.
func (f *feed) rebuildSubs() {
	list := make([]Subscriber, 0, len(f.subs))
	autoBid := false
	for _, s := range f.subs {
		list = append(list, s)
		if b, ok := s.(AutoBidder); ok && b.AutoBids() {
			autoBid = true
		}
	}
	f.subList = list
	f.autoBid.Store(autoBid)
}

func (f *feed) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// recoverFeed contains a panic in a feed (a bug, or in a Subscriber or
// hook): the process and every other feed go on; the broken feed is dropped
// so the next Subscribe starts a fresh one.
func (h *Hub) recoverFeed(f *feed) {
	if r := recover(); r != nil {
		h.log.Error("feed stopped by panic", zap.Int64("product_id", f.id), zap.Any("panic", r), zap.StackSkip("stack", 1))
		// (run's deferred calls, the lease's release among them, have run.)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.feeds[f.id] == f {
			delete(h.feeds, f.id)
		}
	}
}

// retire removes f from the hub if it still has no subscriber.
func (h *Hub) retire(f *feed) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) > 0 {
		return false
	}
	if h.feeds[f.id] == f {
		delete(h.feeds, f.id)
		h.kickRebalance()
	}
	return true
}

func (h *Hub) feed(productID int64) *feed {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.feeds[productID]
}

// State returns productID's latest published change (shared and immutable,
// like every change), or false when it has no feed or nothing is known yet.
func (h *Hub) State(productID int64) (*Change, bool) {
	f := h.feed(productID)
	if f == nil {
		return nil, false
	}
	f.awaitShared()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.last != nil
}

// AwaitReady returns once productID's feed has read its past from the
// cluster's log, or after readyWait: what State and Since wait for. A
// caller that holds a lock the feed's subscribers take (the relay's
// per-auction send lock) calls it first, so that State then answers at
// once: the feed hands the log's past to its subscribers before it is
// ready, and a State waiting under that lock would stall the feed, and
// itself, for readyWait.
func (h *Hub) AwaitReady(productID int64) {
	if f := h.feed(productID); f != nil {
		f.awaitShared()
	}
}

// Since returns the changes after seq in epoch, in order (none when seq is
// the latest), or false when the epoch is not the feed's (the feed was
// recreated) or its history no longer reaches back to seq: the client then
// needs the full State.
func (h *Hub) Since(productID int64, epoch string, seq uint64) (changes []*Change, ok bool) {
	f := h.feed(productID)
	if f == nil {
		return nil, false
	}
	f.awaitShared()
	f.mu.Lock()
	defer f.mu.Unlock()
	if epoch != f.epoch {
		return nil, false
	}
	return f.history.after(seq)
}

// UpdateConfig applies cfg to the hub and its running feeds in place:
// intervals, breaker and stream tuning, linger, limits. Switching UseSSE
// closes or opens streams; no subscriber is dropped and no healthy stream
// is reopened. Validate cfg first.
func (h *Hub) UpdateConfig(cfg Config) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	cfg = h.prepare(cfg, h.cfg.SSE)
	h.cfg = cfg
	h.limiter.SetConfig(cfg.Limiter)
	h.kickRebalance() // max_streams or the poll intervals may have changed
	for _, f := range h.feeds {
		select {
		case <-f.cfgCh: // superseded
		default:
		}
		f.cfgCh <- cfg
	}
}

// OpenStreams returns the number of upstream streams open (or opening).
func (h *Hub) OpenStreams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams
}

// Status reports every feed, by product id.
func (h *Hub) Status() []FeedStatus {
	now := h.clock.Now()
	h.mu.Lock()
	feeds := make([]*feed, 0, len(h.feeds))
	expected := make([]float64, 0, len(h.feeds))
	window := time.Duration(h.cfg.Poll.ClosingWindow)
	for _, f := range h.feeds {
		feeds = append(feeds, f)
		expected = append(expected, expectedStaleness(f.slot, h.budget, now, window))
	}
	h.mu.Unlock()
	out := make([]FeedStatus, 0, len(feeds))
	for i, f := range feeds {
		s := f.statusAt(now)
		s.ExpectedStaleness = expected[i]
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b FeedStatus) int { return cmp.Compare(a.ProductID, b.ProductID) })
	return out
}

// Close ends every feed and waits for all their goroutines and streams.
func (h *Hub) Close() {
	h.mu.Lock()
	if !h.closed {
		close(h.stop)
	}
	h.closed = true
	feeds := h.feeds
	h.feeds = make(map[int64]*feed)
	h.mu.Unlock()
	for _, f := range feeds {
		f.cancel()
	}
	h.running.Wait()
	if h.sharing != nil {
		h.mu.Lock()
		keeper := h.sharing.keeper
		h.mu.Unlock()
		h.sharing.close(keeper)
	}
}
