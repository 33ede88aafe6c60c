package module

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/bidding"
	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/metrics"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/users"
	"github.com/nellis-edge/gateway/wsrelay"
)

// states holds what must survive a config reload: the feeds (open upstream
// streams, their state and history), the connections and the metrics.
// There is one per process, under stateKey. Caddy provisions and starts a
// new config before it cleans up the old one, so across a reload the
// reference count never reaches zero and nothing is closed or reopened.
var states = caddy.NewUsagePool()

const stateKey = "nellis"

// shared is the gateway's long-lived state. The config that created it
// does not own it: each config pushes its settings in when it starts.
type shared struct {
	logger    *zap.Logger
	setLogger func(*zap.Logger)
	nellis    *upstreamClient
	storage   *currentStorage
	metrics   *metrics.Metrics
	users     *users.Directory
	hub       *hub.Hub
	relay     *wsrelay.Relay
	bidder    *bidding.Engine
	// clusterUsers switches the users' store and the engine's bid
	// record to the cluster's at the first start with `cluster`.
	clusterUsers *clusterUsers

	// Loading users' saved data resubscribes their auctions, which dials
	// Nellis, so it waits for the first Start (`caddy validate`
	// provisions but never starts); until then requests are answered
	// "starting up".
	startMu sync.Mutex
	started atomic.Bool
}

// newShared builds the state in one pass and without any I/O: the users
// first, the hub on them (the cookies snapshots are fetched with, which
// products are monitored), the relay on the hub and the users, then the
// engine on the users (who auto-bids) and the relay (where states go),
// which the relay then takes as its bidder. Users are loaded at start.
//
// bus, when the config has `cluster`, joins the hub to the other nodes: it
// is not connected yet (Start connects it before anything subscribes), and
// the state keeps it, with the hub's leases, for as long as it lives.
func newShared(logger *zap.Logger, client *nellis.Client, hubCfg hub.Config, bidCfg bidding.Config, bus cluster.Bus) (*shared, error) {
	s := &shared{metrics: metrics.New(), nellis: new(upstreamClient), storage: new(currentStorage), users: users.NewDirectory()}
	s.logger, s.setLogger = newReloadableLogger(logger)
	s.nellis.client.Store(client)
	// One estimate of Nellis's clock, fed by every snapshot and bid, times
	// the snipes.
	serverClock := new(bidding.ServerClock)
	hubHooks := s.metrics.HubHooks()
	if standalone := hubHooks.Standalone; standalone != nil {
		// Cut off from the cluster, or back: every auto-bid state says so
		// at once, news or not. The hub follows the bus from New, but
		// nothing is lost before Start connects it, and the bidder
		// exists by then.
		hubHooks.Standalone = func(alone bool) {
			standalone(alone)
			s.bidder.Recheck()
		}
	}
	ownership := hubHooks.Ownership
	// A lot this node comes to own may be auto-bid on by users who signed
	// in only on other nodes: they are loaded here (clusterusers.RemoteLoader).
	hubHooks.Ownership = func(productID int64, owned bool, reason string) {
		if ownership != nil {
			ownership(productID, owned, reason)
		}
		s.clusterUsers.owned(productID, owned)
	}
	s.hub = hub.New(hubCfg, hub.Deps{
		Snapshots: bidding.TimedSnapshots{Fetcher: s.nellis, Server: serverClock},
		Cookies:   s.users.CookiesFor,
		// The relay logs whose cookies failed; the hub asks only once a
		// feed runs, which the relay starts.
		CookiesFailed: func(productID int64, owner string) { s.relay.CookiesFailed(productID, owner) },
		Monitored:     s.users.Monitored,
		Watchers:      s.users.Watchers,
		ServerTime:    serverClock.Now,
		Logger:        s.logger.Named("feed"),
		Hooks:         hubHooks,
		Shared:        bus,
	})
	relayLog := s.logger.Named("relay")
	relayHooks := s.metrics.RelayHooks()
	store := users.NewStorageStore(s.storage, users.StorageOptions{
		Logger:      func() *zap.Logger { return relayLog },
		Quarantined: relayHooks.RecordQuarantined,
	})
	s.clusterUsers = newClusterUsers(store)
	// Without users the relay loads nothing: Start brings them.
	relay, err := wsrelay.New(context.Background(), wsrelay.Config{}, wsrelay.Options{
		Feeds:     s.hub,
		Directory: s.users,
		Store:     s.clusterUsers.store,
		Logger:    relayLog,
		Hooks:     relayHooks,
		ClientIP:  clientIP,
		Unwrap:    caddyPlainConn,
	})
	if err != nil {
		s.hub.Close()
		return nil, err
	}
	s.relay = relay
	bidder, err := bidding.New(bidCfg, bidding.Options{
		Placer:      s.nellis,
		Feed:        s.hub,
		Directory:   s.users, // who auto-bids: the users' auctions live there
		Reporter:    relay,
		ServerClock: serverClock,
		Logger:      s.logger.Named("bidding"),
		Hooks:       s.metrics.BiddingHooks(),
		// Tried amounts, rate windows and last bids outlive a restart.
		Ledger: users.NewStorageLedger(s.storage),
	})
	if err != nil {
		relay.Shutdown()
		s.hub.Close()
		return nil, err
	}
	s.bidder = bidder
	relay.SetBidder(bidder)
	relay.SetAutoBid(wsrelay.AutoBidHooks{
		Refresh: bidder.Refresh,
		Forget:  bidder.Forget,
		State:   bidder.State,
	})
	s.metrics.SetStatusSource(func() metrics.Snapshot {
		snap := metrics.SnapshotFromFeeds(s.hub.Status())
		snap.AuthenticatedUsers = s.relay.Stats().Authenticated
		snap.PollBudget = s.hub.PollBudget()
		return snap
	})
	return s, nil
}

// start applies a started config's settings; the first one loads the
// users' saved data.
func (s *shared) start(ctx context.Context, logger *zap.Logger, client *nellis.Client,
	hubCfg hub.Config, relayCfg wsrelay.Config, bidCfg bidding.Config, storage users.Storage) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.setLogger(logger)
	s.nellis.client.Store(client)
	s.storage.set(storage)
	s.hub.UpdateConfig(hubCfg)
	if err := s.bidder.UpdateConfig(bidCfg); err != nil {
		return err
	}
	// Loading users tells the engine of every auction loaded from storage.
	if err := s.relay.Configure(ctx, relayCfg); err != nil {
		return err
	}
	s.started.Store(true)
	s.bidder.RetainBids() // the first start sweeps bid records, then daily
	return nil
}

// Destruct ends the state when no config uses it any more: bidding stops
// first (it reports to the relay), clients get 1001 (going away), then
// every feed and upstream stream closes and, in a cluster, the leases are
// released so that other nodes take the products over at once (the bus
// itself closes after, in clusterBus.Destruct).
func (s *shared) Destruct() error {
	s.bidder.Close()
	s.relay.Shutdown()
	s.leaveUsersCluster() // after the relay wrote its pending records
	s.hub.Close()
	return nil
}

// serveWS and serveAPI hand a request to the relay. The relay allows the
// origins of every endpoint of the config; each endpoint first narrows
// that to its own list, so a site's `allowed_origins` mean what they say.
func (s *shared) serveWS(w http.ResponseWriter, r *http.Request, origins []string) {
	if relay := s.ready(w, r, origins); relay != nil {
		relay.ServeWS(w, r)
	}
}

func (s *shared) serveAPI(w http.ResponseWriter, r *http.Request, origins []string) {
	if relay := s.ready(w, r, origins); relay != nil {
		relay.APIHandler().ServeHTTP(w, r)
	}
}

// ready returns the relay, or answers the request itself when the
// endpoint refuses its origin or the app has not started yet.
func (s *shared) ready(w http.ResponseWriter, r *http.Request, origins []string) *wsrelay.Relay {
	if o := r.Header.Get("Origin"); o != "" && !slices.Contains(origins, o) {
		writeError(w, http.StatusForbidden, "origin not allowed")
		return nil
	}
	if !s.started.Load() {
		writeError(w, http.StatusServiceUnavailable, "starting up")
		return nil
	}
	return s.relay
}

// writeError answers with the JSON error shape the REST API uses.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "error": msg})
}

func (s *shared) serveSSEMetrics(w http.ResponseWriter, r *http.Request) {
	s.metrics.ServeSSE(w, r)
}

// clientIP names a request's client as Caddy does, honouring its trusted
// proxies, for the per-IP connection rate.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return r.RemoteAddr
}

// upstreamClient lets a reload point running feeds and the bidder at a
// new Nellis client (a new api_endpoint or snapshot_format) without
// touching them.
type upstreamClient struct {
	client atomic.Pointer[nellis.Client]
}

func (u *upstreamClient) Snapshot(ctx context.Context, productID int64, cookies string) (nellis.Snapshot, error) {
	return u.client.Load().Snapshot(ctx, productID, cookies)
}

func (u *upstreamClient) PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (nellis.BidResult, error) {
	return u.client.Load().PlaceBid(ctx, productID, amount, cookies)
}

// currentStorage is the newest config's storage (Caddy's `storage` global
// option), so users' data follows a reload that moves it: the Caddy
// adapter of the users' StorageStore.
type currentStorage struct {
	inner atomic.Pointer[users.Storage]
}

func (c *currentStorage) set(s users.Storage) { c.inner.Store(&s) }

func (c *currentStorage) Load(ctx context.Context, key string) ([]byte, error) {
	return (*c.inner.Load()).Load(ctx, key)
}

func (c *currentStorage) Store(ctx context.Context, key string, value []byte) error {
	return (*c.inner.Load()).Store(ctx, key, value)
}

// List and Delete reach the storage's own when it has them (Caddy's
// does), for the user_retention sweep.
func (c *currentStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	ls, ok := (*c.inner.Load()).(users.ListingStorage)
	if !ok {
		return nil, users.ErrCannotList
	}
	return ls.List(ctx, prefix, recursive)
}

func (c *currentStorage) Delete(ctx context.Context, key string) error {
	ls, ok := (*c.inner.Load()).(users.ListingStorage)
	if !ok {
		return users.ErrCannotList
	}
	return ls.Delete(ctx, key)
}
