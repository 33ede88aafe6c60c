package bidding

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/clock"
	"github.com/nellis-edge/gateway/users"
)

// Options are the engine's collaborators. Placer is required; Feed and
// Directory are required for auto-bidding (without them the engine places
// manual bids only).
type Options struct {
	Placer    Placer
	Feed      Feed
	Directory Directory
	// Reporter receives auto-bid states; nil drops them.
	Reporter Reporter
	// Clock is the local clock for timers, rate limits and history.
	// Default: the system clock.
	Clock clock.Clock
	// ServerClock estimates Nellis's clock. Default: a new one, fed only
	// by the engine's own bids; share one with a TimedSnapshots so that
	// snapshot fetches feed it too.
	ServerClock *ServerClock
	// Logger. Default: zap.NewNop().
	Logger *zap.Logger
	Hooks  Hooks
	// Ledger keeps each user's tried amounts, rate window and last bids
	// of a lot across restarts and nodes, and records every bid before it
	// is sent. Default: none (kept in memory only).
	Ledger users.BidLedger
	// Owner says which products this node bids on. Default: nil, a
	// single node, which bids on every product.
	Owner Owner
	// Forwarder takes a manual bid on a product another node owns to
	// it. Default: none (such a bid is refused as retryable).
	Forwarder Forwarder
	// Node names this node in the bids it records; "" is a single node,
	// which sends a bid even when recording it failed (it is the
	// record's only writer). Default: "".
	Node string
}

// Engine places every bid of every user. Create it with New and end it
// with Close; it starts a goroutine per product that some user auto-bids
// on (see Refresh) and one per bid in flight.
type Engine struct {
	placer   Placer
	feed     Feed
	dir      Directory
	reporter Reporter
	clock    clock.Clock
	server   *ServerClock
	cl       atomic.Pointer[Cluster]

	cfg    atomic.Pointer[Config] // with defaults
	logger atomic.Pointer[zap.Logger]
	hooks  atomic.Pointer[Hooks]

	ctx    context.Context // cancelled by Close: aborts bids in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers and bids

	// rights, under mu, is the context a worker reads a lot's record
	// under (evaluate): Recheck ends it and makes the next. A read begun
	// before the node's right to bid changed is of no use after it, and
	// one waiting on a NATS connection that has gone would hold its
	// worker for ledgerTimeout, the users' states not saying meanwhile
	// that auto-bid is paused.
	rights       context.Context
	rightsCancel context.CancelFunc

	// active counts work not yet done: wake-ups queued for workers and
	// bids in flight. Tests wait for it to drain.
	active atomic.Int64

	subMu sync.Mutex // serialises Refresh; taken before mu, never after

	mu        sync.Mutex
	closed    bool
	retaining bool // RetainBids started the sweeps of bid records
	workers   map[int64]*worker
	views     map[int64]*view
	// paused holds the lots whose states show the pause (paused.go).
	pausedLots map[int64]struct{}
	states     map[stateKey]*bidState
	lots       map[idKey]int64       // an auction id's product, for every id of a state
	loose      map[stateKey]struct{} // states made by bids on lots the user does not monitor
	authFailed map[string][32]byte   // user → hash of the cookies Nellis refused

	reportMu sync.Mutex // orders reports: one Reporter call at a time
}

// New checks cfg and returns an engine; it starts nothing yet.
func New(cfg Config, opts Options) (*Engine, error) {
	if opts.Placer == nil {
		return nil, errors.New("bidding: a Placer is required")
	}
	if (opts.Feed == nil) != (opts.Directory == nil) {
		return nil, errors.New("bidding: auto-bidding needs both a Feed and a Directory")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bidding: %w", err)
	}
	e := &Engine{
		placer:     opts.Placer,
		feed:       opts.Feed,
		dir:        opts.Directory,
		reporter:   opts.Reporter,
		clock:      opts.Clock,
		server:     opts.ServerClock,
		workers:    make(map[int64]*worker),
		views:      make(map[int64]*view),
		states:     make(map[stateKey]*bidState),
		lots:       make(map[idKey]int64),
		loose:      make(map[stateKey]struct{}),
		authFailed: make(map[string][32]byte),
	}
	if e.clock == nil {
		e.clock = clock.System{}
	}
	if e.server == nil {
		e.server = &ServerClock{}
	}
	withDefaults := cfg.withDefaults()
	e.cfg.Store(&withDefaults)
	e.cl.Store(&Cluster{Ledger: opts.Ledger, Owner: opts.Owner, Forwarder: opts.Forwarder, Node: opts.Node})
	e.SetLogger(opts.Logger)
	e.SetHooks(opts.Hooks)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.rights, e.rightsCancel = context.WithCancel(e.ctx)
	return e, nil
}

// UpdateConfig applies new switches and limits at once (a reload): every
// auction is looked at again under them.
func (e *Engine) UpdateConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("bidding: %w", err)
	}
	withDefaults := cfg.withDefaults()
	e.cfg.Store(&withDefaults)
	e.mu.Lock()
	workers := make([]*worker, 0, len(e.workers))
	for _, w := range e.workers {
		workers = append(workers, w)
	}
	e.mu.Unlock()
	for _, w := range workers {
		w.poke()
	}
	return nil
}

// Cluster is how the engine records its bids and shares the lots with
// other nodes: Options' Ledger, Owner, Forwarder and Node, which
// SetCluster replaces.
type Cluster struct {
	Ledger    users.BidLedger
	Owner     Owner
	Forwarder Forwarder
	Node      string
}

// SetCluster replaces the ledger, owner, forwarder and node name: the
// module's, once the gateway has joined its cluster (its first start).
// Every lot's record is read again before its next bid.
func (e *Engine) SetCluster(c Cluster) {
	e.cl.Store(&c)
	e.mu.Lock()
	for _, st := range e.states {
		if !st.inFlight {
			st.loaded = false
		}
	}
	e.mu.Unlock()
}

func (e *Engine) cluster() *Cluster { return e.cl.Load() }

// SetLogger replaces the logger; nil discards logs.
func (e *Engine) SetLogger(l *zap.Logger) {
	if l == nil {
		l = zap.NewNop()
	}
	e.logger.Store(l)
}

// SetHooks replaces the metrics callbacks.
func (e *Engine) SetHooks(h Hooks) { e.hooks.Store(&h) }

// ServerClock is the engine's estimate of Nellis's clock.
func (e *Engine) ServerClock() *ServerClock { return e.server }

func (e *Engine) config() *Config  { return e.cfg.Load() }
func (e *Engine) log() *zap.Logger { return e.logger.Load() }
func (e *Engine) hooksNow() *Hooks { return e.hooks.Load() }

// Refresh looks at who auto-bids on productID again. The relay calls it
// whenever that may have changed: an auction started, stopped or
// reconfigured, cookies synced, users loaded. The engine follows the
// product's feed while anyone auto-bids on it, and not after. It calls the
// Directory, so the relay must not hold its own lock while calling it.
func (e *Engine) Refresh(productID int64) {
	if e.dir == nil {
		return
	}
	watchers := e.dir.AutoBidders(productID)
	e.subMu.Lock()
	defer e.subMu.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	w := e.workers[productID]
	switch {
	case len(watchers) == 0 && w == nil:
		e.mu.Unlock()
	case len(watchers) == 0:
		delete(e.workers, productID)
		delete(e.views, productID)
		e.mu.Unlock()
		w.stop()
	case w != nil:
		e.mu.Unlock()
		// A look in progress may still hold a watcher that just left: it
		// ends before the caller goes on to forget that watcher's state.
		w.settle()
		w.poke()
	default:
		w = newWorker(e, productID)
		e.workers[productID] = w
		e.wg.Add(1)
		e.mu.Unlock()
		go w.run()
		w.setUnsubscribe(e.feed.Subscribe(productID, w))
		if c, ok := e.feed.State(productID); ok {
			w.Deliver(c)
		}
		w.poke()
	}
}

// Forget drops a user's auction id, once the user stopped monitoring it,
// and the lot's state (its history included) with the lot's last id.
func (e *Engine) Forget(user, auctionID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dropIDLocked(idKey{user, auctionID})
}

// dropIDLocked unlinks an auction id from its lot's state, and drops the
// state once no id is left; the caller holds mu.
func (e *Engine) dropIDLocked(ik idKey) {
	productID, ok := e.lots[ik]
	if !ok {
		return
	}
	delete(e.lots, ik)
	k := stateKey{ik.user, productID}
	if st := e.states[k]; st != nil {
		delete(st.ids, ik.auctionID)
		if len(st.ids) == 0 {
			delete(e.states, k)
		}
	}
}

// State is a user's auto-bid state of an auction and its last bids: the
// state of the lot the auction id names.
func (e *Engine) State(user, auctionID string) (State, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	productID, ok := e.lots[idKey{user, auctionID}]
	if !ok {
		return State{}, false
	}
	k := stateKey{user, productID}
	st, ok := e.states[k]
	if !ok {
		return State{}, false
	}
	return st.snapshot(k, auctionID), true
}

// Close stops every worker, cancels the bids in flight and returns once
// every goroutine of the engine has ended.
func (e *Engine) Close() {
	e.subMu.Lock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.subMu.Unlock()
		e.wg.Wait()
		return
	}
	e.closed = true
	workers := make([]*worker, 0, len(e.workers))
	for id, w := range e.workers {
		workers = append(workers, w)
		delete(e.workers, id)
	}
	e.mu.Unlock()
	e.subMu.Unlock()
	e.cancel()
	for _, w := range workers {
		w.stop()
	}
	e.wg.Wait()
}

// stateLocked returns k's state, creating it, and links the user's
// auction ids to it; the caller holds mu.
func (e *Engine) stateLocked(k stateKey, auctionIDs ...string) *bidState {
	st := e.states[k]
	if st == nil {
		st = newBidState(k.productID)
		e.states[k] = st
	}
	for _, id := range auctionIDs {
		ik := idKey{k.user, id}
		if p, ok := e.lots[ik]; ok && p != k.productID {
			e.dropIDLocked(ik) // the id named another lot before
		}
		e.lots[ik] = k.productID
		if _, known := st.ids[id]; !known {
			st.ids[id] = struct{}{}
			st.version++ // the new id is told the lot's state
		}
	}
	return st
}

// poke makes productID's worker look again, if it has one.
func (e *Engine) poke(productID int64) {
	e.mu.Lock()
	w := e.workers[productID]
	e.mu.Unlock()
	if w != nil {
		w.poke()
	}
}

// flush hands the Reporter the states of keys that changed since they were
// last reported, in order and the newest only, under each of the lot's
// auction ids.
func (e *Engine) flush(keys []stateKey) {
	if e.reporter == nil || len(keys) == 0 {
		return
	}
	e.reportMu.Lock()
	defer e.reportMu.Unlock()
	for _, k := range keys {
		e.mu.Lock()
		st, ok := e.states[k]
		var states []State
		if ok && st.version != st.reported {
			for _, id := range sortedIDs(st.ids) {
				states = append(states, st.snapshot(k, id))
			}
			st.reported = st.version
		}
		e.mu.Unlock()
		for _, s := range states {
			e.reporter.ReportAutoBid(s)
		}
	}
}

func sortedIDs(ids map[string]struct{}) []string {
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// recoverPanic keeps a bug in one goroutine from taking the process down.
func (e *Engine) recoverPanic(what string) {
	if v := recover(); v != nil {
		e.log().Error("panic in bidding goroutine", zap.String("goroutine", what), zap.Any("panic", v), zap.StackSkip("stack", 1))
	}
}
