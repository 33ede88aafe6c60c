package clusterusers

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

// RemoteLoader loads, on the owner of a lot, the strangers (strangers.go)
// with an auction on it: users of signed tokens who signed in only on
// other nodes, whose auctions only this node's engine may bid on. The
// watch names them as their records change (Stranger), and so does the
// index when this node comes to own a lot (Owned). One goroutine loads
// them, off the watch's and the feeds' goroutines, which must not wait on
// the store, and lets go of those whose lots this node no longer owns.
type RemoteLoader struct {
	opts  LoaderOptions
	store strangerIndex // set by Start, read by the caller's goroutines
	every time.Duration // the sweep's period

	mu      sync.Mutex
	started bool
	pending map[string]struct{}
	release bool // a lot was lost: look for users to let go
	full    bool // the bound was logged; again once under it (run's own)
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// RemoteHolder is the node's relay (wsrelay.Relay): it holds the users
// loaded to bid for them, and bounds how many.
type RemoteHolder interface {
	// LoadRemoteUser loads name unless loaded already, and reports
	// whether it did; at the bound it returns LoaderOptions.Full.
	LoadRemoteUser(ctx context.Context, name string, limit int) (bool, error)
	// ReleaseRemoteUsers lets go of the remote users with no auction on a
	// product keep holds, and returns their names.
	ReleaseRemoteUsers(keep func(productID int64) bool) []string
	// Loaded reports whether name is loaded here, remote or signed in.
	Loaded(name string) bool
}

// LoaderOptions are a RemoteLoader's settings and collaborators.
type LoaderOptions struct {
	Holder RemoteHolder // Required.
	// Owns says whether this node owns a lot now. Required.
	Owns func(productID int64) bool
	// Limit bounds the remote users held at once (the cluster's
	// remote_users). Required.
	Limit int
	// Full is the error Holder returns at Limit: logged once, and again
	// only after a user was loaded under it.
	Full error
	// Logger returns the logger now. Default: none.
	Logger func() *zap.Logger
}

// strangerIndex is the store's index of strangers: *Store.
type strangerIndex interface {
	Strangers(productID int64) []string
	Unload(name string)
}

// remoteSweepEvery is how often the users held for lots this node no
// longer owns are let go, besides at each lot lost.
const remoteSweepEvery = time.Minute

// NewRemoteLoader returns a loader that loads nobody until Start.
func NewRemoteLoader(opts LoaderOptions) (*RemoteLoader, error) {
	if opts.Holder == nil || opts.Owns == nil || opts.Limit < 1 {
		return nil, errors.New("clusterusers: the remote users' loader needs Holder, Owns and a positive Limit")
	}
	return &RemoteLoader{
		opts: opts, every: remoteSweepEvery,
		pending: make(map[string]struct{}), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

func (x *RemoteLoader) log() *zap.Logger {
	if x.opts.Logger == nil {
		return zap.NewNop()
	}
	return x.opts.Logger()
}

// Start runs the loader on store, until Close.
func (x *RemoteLoader) Start(store *Store) { x.start(store) }

func (x *RemoteLoader) start(store strangerIndex) {
	x.mu.Lock()
	defer x.mu.Unlock()
	select {
	case <-x.stop:
		return // closed before it started
	default:
	}
	if x.started {
		return
	}
	x.started, x.store = true, store
	go x.run()
}

// Stranger is the store's Options.Stranger: a user not loaded here with
// an auction on a lot this node owns is loaded.
func (x *RemoteLoader) Stranger(name string, products []int64) {
	for _, p := range products {
		if x.opts.Owns(p) {
			x.queue(name)
			return
		}
	}
}

// Owned follows the hub's Ownership hook, on a feed's goroutine: the
// strangers of a lot this node comes to own are loaded, and losing one
// looks for users to let go.
func (x *RemoteLoader) Owned(productID int64, owned bool) {
	x.mu.Lock()
	store := x.store
	if !owned {
		x.release = true
	}
	x.mu.Unlock()
	if !owned {
		x.poke()
		return
	}
	if store == nil {
		return // not started: nobody is loaded yet
	}
	for _, name := range store.Strangers(productID) {
		x.queue(name)
	}
}

func (x *RemoteLoader) queue(name string) {
	x.mu.Lock()
	x.pending[name] = struct{}{}
	x.mu.Unlock()
	x.poke()
}

func (x *RemoteLoader) poke() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

func (x *RemoteLoader) run() {
	defer close(x.done)
	tick := time.NewTicker(x.every)
	defer tick.Stop()
	for {
		select {
		case <-x.stop:
			return
		case <-x.wake:
		case <-tick.C:
			x.mu.Lock()
			x.release = true
			x.mu.Unlock()
		}
		x.mu.Lock()
		pending, release := x.pending, x.release
		x.pending, x.release = make(map[string]struct{}), false
		x.mu.Unlock()
		if release {
			for _, name := range x.opts.Holder.ReleaseRemoteUsers(x.opts.Owns) {
				x.store.Unload(name)
				x.log().Debug("remote user let go: this node owns none of their lots", zap.String("user", name))
			}
		}
		for name := range pending {
			select {
			case <-x.stop:
				return // the rest would only be let go again
			default:
			}
			x.load(name)
		}
	}
}

func (x *RemoteLoader) load(name string) {
	loaded, err := x.opts.Holder.LoadRemoteUser(context.Background(), name, x.opts.Limit)
	switch {
	case x.opts.Full != nil && errors.Is(err, x.opts.Full):
		if !x.full {
			x.full = true
			x.log().Warn("remote_users reached: a user who signed in on another node is not loaded to bid on this node's lots",
				zap.String("user", name), zap.Int("remote_users", x.opts.Limit))
		}
	case err != nil:
		x.log().Warn("remote user not loaded", zap.String("user", name), zap.Error(err))
	case loaded:
		x.full = false
		x.log().Debug("remote user loaded to bid on a lot this node owns", zap.String("user", name))
	}
	if !x.opts.Holder.Loaded(name) {
		x.store.Unload(name) // still a stranger: the watch keeps their lots
	}
}

// Close stops the loader and waits for it.
func (x *RemoteLoader) Close() {
	x.mu.Lock()
	started := x.started
	select {
	case <-x.stop:
	default:
		close(x.stop)
	}
	x.mu.Unlock()
	if started {
		<-x.done
	}
}
