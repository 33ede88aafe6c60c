package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/nellis-edge/gateway/cluster"
)

// Cluster mode (Deps.Shared). Each feed is its product's OWNER or a
// READER (hub/owner.go). The owner runs the upstream (stream, polls) as a
// single node does and appends every change to the product's log before
// publishing it; a reader opens nothing upstream and publishes what the
// log brings, with the owner's epoch and seq, so a client may resume on
// any node. The lease (cluster.Lease) says who owns; the fenced append
// refuses a deposed owner's late change.
//
// Only the shared product state goes into the log. What a snapshot said
// about the one user whose cookies fetched it (Change.User) is delivered
// on the node that fetched it and nowhere else: no other node, hence no
// other user, can read it from the log. (That node's relay sends it to
// the user's sockets elsewhere on the user's own subject: wsrelay.Peers.)

// Why a feed stopped owning its product (Hooks.Ownership).
const (
	HandoverReleased = "released" // no interest for linger, or the hub closed
	HandoverDeposed  = "deposed"  // another node took the lease or appended
	HandoverLapsed   = "lapsed"   // the lease ran out unrenewed (NATS away)
	HandoverError    = "error"    // an append failed otherwise
	HandoverHanded   = "handed"   // handed to a node ranked higher for it (hub/handover.go)
)

// The results of an owner's append (Hooks.SharedAppend).
const (
	AppendOK      = "ok"
	AppendDeposed = "deposed" // fenced: another node appended since
	AppendLapsed  = "lapsed"  // not sent: the lease was no longer valid
	AppendError   = "error"
)

// sharing is the hub's side of the cluster: the node's one subscription
// to the log, which it hands to the local feeds by product, and the keeper
// that renews the leases the feeds hold.
type sharing struct {
	h   *Hub
	bus cluster.Bus

	// Set once by start, under Hub.mu.
	started bool
	keeper  *cluster.Keeper
	// alone follows bus.Lost for the feeds (hub/standalone.go).
	alone atomic.Bool
	// subscribed is closed once the node follows the log: a feed reads
	// the log's past only after that, so that nothing falls in between.
	subscribed chan struct{}

	// The live nodes as last listed, for every feed joining until a
	// renewal period later (liveNodes).
	nodesMu  sync.Mutex
	nodes    []string
	nodesErr error
	nodesAt  time.Time
}

// liveNodes lists the live nodes, once per renewal period for all the
// feeds that join meanwhile: a listing reads the nodes' bucket through a
// consumer of its own, and a node whose clients ask for thousands of lots
// at once would otherwise make one per lot (TestReaderJoinsThousandsOfLots).
// The list changes only when a node comes or goes, a lease apart.
func (s *sharing) liveNodes(ctx context.Context) ([]string, error) {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	every := s.bus.RenewEvery()
	if !s.nodesAt.IsZero() && time.Since(s.nodesAt) < every {
		return s.nodes, s.nodesErr
	}
	// For all the feeds waiting: not ended by the asking one's end.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
	defer cancel()
	s.nodes, s.nodesErr = s.bus.LiveNodes(ctx)
	s.nodesAt = time.Now()
	return s.nodes, s.nodesErr
}

func newSharing(h *Hub, bus cluster.Bus) *sharing {
	return &sharing{h: h, bus: bus, subscribed: make(chan struct{})}
}

// Follow starts following the cluster (the feed log, the owners, the
// handovers) before any feed asks for it; without a cluster it does
// nothing. The gateway calls it once the bus is connected: a node that
// first subscribes to the log when its first client asks for a lot keeps
// that client waiting for the subscription, up to readyWait, and the
// first lot of a node is often one whose owner is another node.
func (h *Hub) Follow() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.startSharing()
	}
}

// startSharing starts following the log and keeping leases, at Follow or
// with the first feed; the caller holds h.mu. Close ends both.
func (h *Hub) startSharing() {
	s := h.sharing
	if s == nil || s.started {
		return
	}
	s.started = true
	s.keeper = cluster.NewKeeper(s.bus, s.lost)
	h.running.Add(1)
	go func() {
		defer h.running.Done()
		s.follow()
	}()
	h.running.Add(1)
	go func() {
		defer h.running.Done()
		s.watchOwners()
	}()
	h.running.Add(1)
	go func() {
		defer h.running.Done()
		s.serveHandovers()
	}()
}

// follow subscribes to the log and stops at Hub.Close (keepOpen).
func (s *sharing) follow() {
	s.keepOpen("follow the feed log", zapcore.WarnLevel,
		func(ctx context.Context) (cluster.Subscription, error) { return s.bus.Subscribe(ctx, s.dispatch) },
		func() { close(s.subscribed) })
}

// keepOpen opens a subscription of the bus with open, trying again every
// renewal period until it can (the bus may not be connected yet; the
// first failure is logged at level), calls opened once it is open, and
// stops it at Hub.Close.
func (s *sharing) keepOpen(what string, level zapcore.Level, open func(context.Context) (cluster.Subscription, error), opened func()) {
	every := s.bus.RenewEvery()
	logged := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), every)
		sub, err := open(ctx)
		cancel()
		if err == nil {
			opened()
			<-s.h.stop
			sub.Stop()
			return
		}
		if ce := s.h.log.Check(level, "cluster: cannot "+what+" yet; retrying"); ce != nil && !logged {
			ce.Write(zap.Error(err))
			logged = true
		}
		t := time.NewTimer(every)
		select {
		case <-s.h.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// dispatch hands an entry of the log to the product's local feed, if any.
// It runs on the subscription's goroutine and never waits on a feed.
func (s *sharing) dispatch(e cluster.Entry) {
	if f := s.h.feed(e.ProductID); f != nil && f.share != nil {
		f.share.push(e)
	}
}

// lost is the keeper's report that another node took a lease: the feed
// stops acting at once.
func (s *sharing) lost(productID int64) {
	if f := s.h.feed(productID); f != nil && f.share != nil {
		f.share.wake()
	}
}

// close releases every lease still held, once the feeds have ended.
func (s *sharing) close(keeper *cluster.Keeper) {
	if keeper == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.bus.RenewEvery())
	defer cancel()
	if err := keeper.Close(ctx); err != nil {
		s.h.log.Debug("cluster: releasing leases at close", zap.Error(err))
	}
}

// maxInbox bounds the entries waiting for a busy feed; past it they are
// dropped and the feed reads the log again.
const maxInbox = 1024

// readyWait bounds how long State and Since wait for a new feed to read
// the log's past, and each read of it.
const readyWait = 2 * time.Second

// feedShare is a feed's side of the cluster. Its role, lease and plans
// are the feed goroutine's; the inbox is filled by dispatch.
type feedShare struct {
	s *sharing

	role    role
	lease   *cluster.Lease                // held while owner
	held    atomic.Pointer[cluster.Lease] // lease, for Hub.Owns on other goroutines
	app     *cluster.Appender             // writes the log while owner
	claimAt time.Time                     // a reader's next claim, by the real clock
	triedAt time.Time                     // a reader's last claim
	// aloneEpoch is the epoch of a standalone feed (hub/standalone.go).
	aloneEpoch string
	// fromStart makes the next catch-up read the log's newest epoch
	// whole: the history holds another epoch the log may not know.
	fromStart bool
	// Reads of the log (hub/logread.go): whether one succeeded yet, how
	// many failed in a row since, and when to try again (real clock).
	readOnce  bool
	readFails int
	readAt    time.Time
	// For handovers (hub/handover.go): when this node began owning the
	// product, when the feed's local interest began, a reader's next ask.
	ownedAt       time.Time
	interestSince time.Time
	askAt         time.Time

	ready  chan struct{} // closed once the feed read the log's past
	wakeCh chan struct{} // buffered 1: an entry or a lost lease

	mu       sync.Mutex
	inbox    []cluster.Entry
	overflow bool
	owner    string // the node known to own the product, for Status
	// What the owners' watch last saw of the product's lease key
	// (hub/ownerwatch.go): when it was written, or that it is gone.
	keyAt     time.Time
	keyGone   bool
	keyNode   string
	keyHanded bool // keyNode is the node the product is handed to
	// askedBy is the best node that asked for the product lately, at
	// askedAt (hub/handover.go).
	askedBy string
	askedAt time.Time
}

type role int

const (
	roleReader role = iota
	roleOwner
	roleAlone // standalone: without NATS, serving local clients
)

func (r role) String() string {
	switch r {
	case roleOwner:
		return "owner"
	case roleAlone:
		return "standalone"
	}
	return "reader"
}

func newFeedShare(s *sharing) *feedShare {
	return &feedShare{s: s, ready: make(chan struct{}), wakeCh: make(chan struct{}, 1)}
}

func (sh *feedShare) push(e cluster.Entry) {
	sh.mu.Lock()
	if len(sh.inbox) < maxInbox {
		sh.inbox = append(sh.inbox, e)
	} else {
		sh.overflow = true
	}
	sh.mu.Unlock()
	sh.wake()
}

func (sh *feedShare) wake() {
	select {
	case sh.wakeCh <- struct{}{}:
	default:
	}
}

// take empties the inbox.
func (sh *feedShare) take() (entries []cluster.Entry, overflow bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	entries, overflow = sh.inbox, sh.overflow
	sh.inbox, sh.overflow = nil, false
	return entries, overflow
}

func (sh *feedShare) setOwner(node string) {
	sh.mu.Lock()
	sh.owner = node
	sh.mu.Unlock()
}

func (sh *feedShare) knownOwner() string {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.owner
}

// awaitShared waits, a bounded time, until a cluster feed has read the
// log's past, so that State and Since answer from it.
func (f *feed) awaitShared() {
	if f.share == nil {
		return
	}
	select {
	case <-f.share.ready:
		return
	default:
	}
	t := time.NewTimer(readyWait)
	defer t.Stop()
	select {
	case <-f.share.ready:
	case <-f.ctx.Done():
	case <-t.C:
	}
}
