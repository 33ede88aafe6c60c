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
	hub       *hub.Hub
	bidder    *bidding.Engine

	// The relay loads users' saved data and resubscribes their auctions,
	// which dials Nellis, so it is made on the first Start: `caddy
	// validate` provisions but never starts.
	startMu sync.Mutex
	relay   atomic.Pointer[wsrelay.Relay]
	// registry is the users as the hub (the cookies snapshots are
	// fetched with) and the engine (its Directory and Reporter) see them:
	// built first, it stands for the relay once the relay exists.
	registry users.LateRegistry
}

// newShared builds the state without any I/O.
func newShared(logger *zap.Logger, client *nellis.Client, hubCfg hub.Config, bidCfg bidding.Config) (*shared, error) {
	s := &shared{metrics: metrics.New(), nellis: new(upstreamClient), storage: new(currentStorage)}
	s.logger, s.setLogger = newReloadableLogger(logger)
	s.nellis.client.Store(client)
	// One estimate of Nellis's clock, fed by every snapshot and bid, times
	// the snipes.
	serverClock := new(bidding.ServerClock)
	s.hub = hub.New(hubCfg, hub.Deps{
		Snapshots:     bidding.TimedSnapshots{Fetcher: s.nellis, Server: serverClock},
		Cookies:       s.registry.CookiesFor,
		CookiesFailed: s.registry.CookiesFailed,
		Monitored:     s.registry.Monitored,
		ServerTime:    serverClock.Now,
		Logger:        s.logger.Named("feed"),
		Hooks:         s.metrics.HubHooks(),
	})
	bidder, err := bidding.New(bidCfg, bidding.Options{
		Placer:      s.nellis,
		Feed:        s.hub,
		Directory:   &s.registry,
		Reporter:    &s.registry,
		ServerClock: serverClock,
		Logger:      s.logger.Named("bidding"),
		Hooks:       s.metrics.BiddingHooks(),
	})
	if err != nil {
		s.hub.Close()
		return nil, err
	}
	s.bidder = bidder
	s.metrics.SetStatusSource(func() metrics.Snapshot {
		snap := metrics.SnapshotFromFeeds(s.hub.Status())
		if r := s.relay.Load(); r != nil {
			snap.AuthenticatedUsers = r.Stats().Authenticated
		}
		return snap
	})
	return s, nil
}

// start applies a started config's settings, creating the relay on the
// first start.
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
	if r := s.relay.Load(); r != nil {
		return r.UpdateConfig(relayCfg)
	}
	relayLog := s.logger.Named("relay")
	relayHooks := s.metrics.RelayHooks()
	store := users.NewStorageStore(s.storage, users.StorageOptions{
		Logger:      func() *zap.Logger { return relayLog },
		Quarantined: relayHooks.RecordQuarantined,
	})
	r, err := wsrelay.New(ctx, relayCfg, wsrelay.Options{
		Feeds:    s.hub,
		Store:    store,
		Bidder:   s.bidder,
		Logger:   relayLog,
		Hooks:    relayHooks,
		ClientIP: clientIP,
		Unwrap:   caddyPlainConn,
	})
	if err != nil {
		return err
	}
	s.relay.Store(r)
	s.registry.Set(r)
	// Now that the engine can see the relay, tell the relay where to
	// report; this also looks at every auction loaded from storage.
	r.SetAutoBid(wsrelay.AutoBidHooks{
		Refresh: s.bidder.Refresh,
		Forget:  s.bidder.Forget,
		State:   s.bidder.State,
	})
	return nil
}

// Destruct ends the state when no config uses it any more: bidding stops
// first (it reports to the relay), clients get 1001 (going away), then
// every feed and upstream stream closes.
func (s *shared) Destruct() error {
	s.bidder.Close()
	if r := s.relay.Load(); r != nil {
		r.Shutdown()
	}
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
	relay := s.relay.Load()
	if relay == nil {
		writeError(w, http.StatusServiceUnavailable, "starting up")
	}
	return relay
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
