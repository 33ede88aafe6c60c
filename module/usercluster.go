package module

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/bidding"
	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/clusterusers"
	"github.com/nellis-edge/gateway/users"
	"github.com/nellis-edge/gateway/wsrelay"
)

// clusterUsers is the users' side of cluster mode: until the gateway
// joins a cluster, the relay's store is the single-node StorageStore;
// at the first start with `cluster` it becomes the bucket <prefix>_users
// (clusterusers.Store), which imports the single-node records once and
// applies other nodes' changes to the relay, and the engine records its
// bids there and hands manual bids to the lots' owners.
type clusterUsers struct {
	store *switchStore
	key   atomic.Pointer[[]byte] // the cookie key, updated by every start

	mu     sync.Mutex
	joined bool
	leave  func() // stops the watch and the bid hand-over

	// remote loads the users who signed in on other nodes to bid for
	// them on this node's lots; nil until joined.
	remote atomic.Pointer[clusterusers.RemoteLoader]
	// news carries the owners' words to users' sockets on other nodes;
	// nil until joined.
	news atomic.Pointer[clusterusers.UserNews]
}

// owned follows the hub's Ownership hook (a feed's goroutine).
func (c *clusterUsers) owned(productID int64, owned bool) {
	if c == nil {
		return // a hook before the state was built: no user is loaded yet
	}
	if x := c.remote.Load(); x != nil {
		x.Owned(productID, owned)
	}
}

func newClusterUsers(single users.UserStore) *clusterUsers {
	c := &clusterUsers{store: &switchStore{}}
	c.store.set(single)
	return c
}

func (c *clusterUsers) cookieKey() []byte {
	if k := c.key.Load(); k != nil {
		return *k
	}
	return nil
}

// join makes the cluster's bucket the users' store, once: the first
// start with `cluster`, before the relay loads any user. Later starts (a
// reload) only take the cookie key.
func (s *shared) joinUsersCluster(ctx context.Context, bus *clusterBus, cookieKey string, configured []string, storage users.Storage) error {
	c := s.clusterUsers
	key, err := wsrelay.ParseCookieKey(cookieKey)
	if err != nil {
		return err
	}
	if key == nil {
		return errors.New("cluster needs cookie_key: cookies travel between nodes sealed")
	}
	old := c.key.Swap(&key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.joined {
		if news := c.news.Load(); news != nil && (old == nil || !bytes.Equal(*old, key)) {
			// A new key names every user's news subject anew.
			news.Refollow()
		}
		return nil
	}
	nc, js := bus.bus.Handles()
	cfg := bus.bus.Config()
	log := s.logger.Named("cluster")
	logNow := func() *zap.Logger { return log }
	limit := cfg.RemoteUsers
	if limit <= 0 {
		limit = cluster.DefaultRemoteUsers
	}
	// A lot's owner loads the users who signed in only on other nodes
	// and have an auction on it: only its engine bids there.
	remote, err := clusterusers.NewRemoteLoader(clusterusers.LoaderOptions{
		Holder: s.relay, Owns: s.hub.Owns, Limit: limit, Full: wsrelay.ErrRemoteUsersFull, Logger: logNow,
	})
	if err != nil {
		return err
	}
	store, err := clusterusers.Open(ctx, js, clusterusers.Options{
		Prefix: cfg.Prefix, Replicas: cfg.Replicas, Logger: logNow, Key: c.cookieKey,
		Changed: s.relay.ApplyRecord, Stranger: remote.Stranger,
	})
	if err != nil {
		return err
	}
	s.storage.set(storage)
	names, err := clusterusers.StoredNames(ctx, s.storage)
	if err != nil {
		return err
	}
	names = append(names, configured...)
	slices.Sort(names)
	n, err := store.ImportOnce(ctx, c.store.current(), users.NewStorageLedger(s.storage), slices.Compact(names), key)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("users imported into the cluster from single-node storage", zap.Int("users", n))
	}
	remote.Start(store)
	c.remote.Store(remote)
	if err := store.Watch(context.Background()); err != nil {
		c.remote.Store(nil)
		remote.Close()
		return err
	}
	fw, err := clusterusers.NewForwarder(ctx, nc, js, clusterusers.ForwarderOptions{
		Prefix: cfg.Prefix, Node: cfg.Node, Key: c.cookieKey, Logger: logNow,
	})
	if err == nil {
		err = fw.Serve(s.bidder.PlaceOwnBid, func() time.Duration { return s.bidder.BidTimeout() })
	}
	var news *clusterusers.UserNews
	if err == nil {
		// What the owner's engine and cookie snapshots say to a user
		// reaches the user's sockets on every node.
		news, err = clusterusers.NewUserNews(nc, clusterusers.NewsOptions{
			Prefix: cfg.Prefix, Node: cfg.Node, Key: c.cookieKey, Owns: s.hub.Owns, Present: s.relay.HasSockets,
			AutoBid: s.relay.ApplyPeerAutoBid, UserState: s.relay.ApplyPeerUserState, Current: s.relay.PeerNews, Logger: logNow,
		})
	}
	if err != nil {
		if fw != nil {
			fw.Close()
		}
		store.Close()
		c.remote.Store(nil)
		remote.Close()
		return err
	}
	s.relay.SetPeers(news)
	c.news.Store(news)
	// Only the node whose feed holds a lot's lease bids on it (the hub's
	// Owns); the ledger's compare-and-set refuses the late bid of a node
	// that lost the lease meanwhile.
	s.bidder.SetCluster(bidding.Cluster{
		Ledger: clusterusers.NewLedger(store.KeyValue()), Owner: s.hub, Forwarder: fw, Node: cfg.Node,
	})
	c.store.set(store)
	c.leave = func() {
		c.remote.Store(nil)
		remote.Close() // before the store it loads users from
		s.relay.SetPeers(nil)
		c.news.Store(nil)
		news.Close()
		fw.Close()
		store.Close()
	}
	c.joined = true
	return nil
}

// leaveUsersCluster stops the watch and the bid hand-over; the shared
// state's end calls it once the relay has written its pending records.
func (s *shared) leaveUsersCluster() {
	c := s.clusterUsers
	c.mu.Lock()
	leave := c.leave
	c.leave = nil
	c.mu.Unlock()
	if leave != nil {
		leave()
	}
}

// switchStore is the relay's users.UserStore, which the first start with
// `cluster` switches from the single-node storage to the cluster's
// bucket before any user is loaded.
type switchStore struct {
	inner atomic.Pointer[users.UserStore]
}

func (w *switchStore) set(s users.UserStore) { w.inner.Store(&s) }

func (w *switchStore) current() users.UserStore { return *w.inner.Load() }

func (w *switchStore) Load(ctx context.Context, name string, key []byte) (users.Record, error) {
	return w.current().Load(ctx, name, key)
}

func (w *switchStore) Save(ctx context.Context, name string, rec users.Record, key []byte) error {
	return w.current().Save(ctx, name, rec, key)
}

// SaveSnapshot is the current store's when it has one (the cluster's
// bucket), or a Save of the snapshot.
func (w *switchStore) SaveSnapshot(ctx context.Context, name string, snapshot func() (users.Record, bool), key []byte) error {
	store := w.current()
	if ss, ok := store.(users.SnapshotSaver); ok {
		return ss.SaveSnapshot(ctx, name, snapshot, key)
	}
	rec, ok := snapshot()
	if !ok {
		return nil
	}
	return store.Save(ctx, name, rec, key)
}

func (w *switchStore) Quarantined() []users.QuarantinedRecord { return w.current().Quarantined() }

// Sweep is the current store's, for user_retention.
func (w *switchStore) Sweep(ctx context.Context, staleBefore time.Time, keep func(string) bool) (users.SweepResult, error) {
	sw, ok := w.current().(users.Sweeper)
	if !ok {
		return users.SweepResult{}, users.ErrCannotList
	}
	return sw.Sweep(ctx, staleBefore, keep)
}

var (
	_ users.UserStore = (*switchStore)(nil)
	_ users.Sweeper   = (*switchStore)(nil)
)

// userNames are the configured users' names.
func (a *App) userNames() []string {
	names := make([]string, 0, len(a.Users))
	for _, u := range a.Users {
		names = append(names, u.Name)
	}
	return names
}
