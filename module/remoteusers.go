package module

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/clusterusers"
	"github.com/nellis-edge/gateway/wsrelay"
)

// remoteUsers loads, on the owner of a lot, the users of signed tokens
// who signed in only on other nodes and have an auction on it (see
// wsrelay/remoteusers.go): the users' watch names them (Stranger), and so
// does the store's index when this node comes to own a lot (owned). One
// goroutine loads them, off the watch's and the feeds' goroutines, and
// lets go of those whose lots this node no longer owns.
type remoteUsers struct {
	relay *wsrelay.Relay
	store atomic.Pointer[clusterusers.Store] // set by start
	owns  func(productID int64) bool
	limit int
	log   *zap.Logger

	mu      sync.Mutex
	pending map[string]struct{}
	release bool // a lot was lost: look for users to let go
	full    bool // the bound was logged; again once under it
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// remoteSweepEvery is how often the users held for lots this node no
// longer owns are let go, besides at each lot lost.
const remoteSweepEvery = time.Minute

func newRemoteUsers(relay *wsrelay.Relay, owns func(int64) bool, limit int, log *zap.Logger) *remoteUsers {
	return &remoteUsers{
		relay: relay, owns: owns, limit: limit, log: log,
		pending: make(map[string]struct{}), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// start runs the loader on store until close.
func (x *remoteUsers) start(store *clusterusers.Store) {
	x.store.Store(store)
	go x.run()
}

// stranger is the store's Stranger: a user not loaded here with an
// auction on a lot this node owns is loaded.
func (x *remoteUsers) stranger(name string, products []int64) {
	for _, p := range products {
		if x.owns(p) {
			x.queue(name)
			return
		}
	}
}

// owned follows the hub's Ownership hook, on a feed's goroutine.
func (x *remoteUsers) owned(productID int64, owned bool) {
	if !owned {
		x.mu.Lock()
		x.release = true
		x.mu.Unlock()
		x.poke()
		return
	}
	store := x.store.Load()
	if store == nil {
		return
	}
	for _, name := range store.Strangers(productID) {
		x.queue(name)
	}
}

func (x *remoteUsers) queue(name string) {
	x.mu.Lock()
	x.pending[name] = struct{}{}
	x.mu.Unlock()
	x.poke()
}

func (x *remoteUsers) poke() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

func (x *remoteUsers) run() {
	defer close(x.done)
	tick := time.NewTicker(remoteSweepEvery)
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
			for _, name := range x.relay.ReleaseRemoteUsers(x.owns) {
				x.store.Load().Unload(name)
				x.log.Debug("remote user let go: this node owns none of their lots", zap.String("user", name))
			}
		}
		for name := range pending {
			x.load(name)
		}
	}
}

func (x *remoteUsers) load(name string) {
	loaded, err := x.relay.LoadRemoteUser(context.Background(), name, x.limit)
	switch {
	case errors.Is(err, wsrelay.ErrRemoteUsersFull):
		if !x.full {
			x.full = true
			x.log.Warn("remote_users reached: a user who signed in on another node is not loaded to bid on this node's lots",
				zap.String("user", name), zap.Int("remote_users", x.limit))
		}
	case err != nil:
		x.log.Warn("remote user not loaded", zap.String("user", name), zap.Error(err))
	case loaded:
		x.full = false
		x.log.Debug("remote user loaded to bid on a lot this node owns", zap.String("user", name))
	}
	if !x.relay.Loaded(name) {
		x.store.Load().Unload(name) // still a stranger: the watch keeps their lots
	}
}

// close stops the loader and waits for it.
func (x *remoteUsers) close() {
	close(x.stop)
	if x.store.Load() != nil {
		<-x.done
	}
}
