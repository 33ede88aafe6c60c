package module

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/bidding"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/wsrelay"
)

// Provision turns the config into the packages' settings and finds (or
// makes, without I/O) the process-wide state. Nothing is applied to a
// running state here: a config may still fail to provision, and Caddy then
// keeps the old one running untouched.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := a.resolveSecrets(); err != nil {
		return err
	}
	a.storage = ctx.Storage()
	transport, err := a.upstreamTransport()
	if err != nil {
		return err
	}
	a.transport = transport
	client, err := nellis.NewClient(a.clientConfig())
	if err != nil {
		return err
	}
	a.client = client
	a.hubCfg = a.hubConfig()
	if err := a.hubCfg.Validate(); err != nil {
		return fmt.Errorf("nellis: %w", err)
	}
	a.relayCfg = a.relayConfig(nil)
	if err := a.relayCfg.Validate(); err != nil {
		return fmt.Errorf("nellis: %w", err)
	}
	a.bidCfg = a.biddingConfig()
	if err := a.bidCfg.Validate(); err != nil {
		return fmt.Errorf("nellis: %w", err)
	}
	if err := a.provisionCluster(); err != nil {
		return err
	}
	v, _, err := states.LoadOrNew(stateKey, func() (caddy.Destructor, error) {
		return newShared(a.logger, client, a.hubCfg, a.bidCfg, a.sharedBus())
	})
	if err != nil {
		return err
	}
	a.shared = v.(*shared)
	a.held = true
	// The registry is new with every config; the collectors are not, so
	// counts carry on across reloads.
	return a.shared.metrics.Register(ctx.GetMetricsRegistry())
}

// Start pushes this config's settings into the running state; the first
// start loads the users' saved data.
func (a *App) Start() error {
	a.relayCfg = a.relayConfig(a.origins)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.startCluster(ctx); err != nil {
		return err
	}
	if a.clusterHold != nil {
		if err := a.shared.joinUsersCluster(ctx, a.clusterHold, a.relayCfg.CookieKey, a.userNames(), a.storage); err != nil {
			return fmt.Errorf("nellis: %w", err)
		}
	}
	if err := a.shared.start(ctx, a.logger, a.client, a.hubCfg, a.relayCfg, a.bidCfg, a.storage); err != nil {
		return fmt.Errorf("nellis: %w", err)
	}
	a.logger.Info("nellis gateway started",
		zap.Bool("use_sse", a.useSSE()),
		zap.Float64("sse_percent", a.ssePercent()),
		zap.Bool("bidding", !a.Bidding.off()),
		zap.Bool("dry_run", a.Bidding.dryRun()),
		zap.Int("users", len(a.Users)),
		zap.Bool("jwt", a.JWT != nil))
	return nil
}

// Stop leaves the shared state alone: the next config (on a reload) takes
// it over, and Cleanup ends it when no config is left.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's hold on the shared state; the last
// release closes connections (1001) and feeds. Caddy also calls it after a
// failed Provision, so it releases only what Provision acquired.
//
// The state goes before the cluster's bus: closing the hub releases its
// leases over the bus, for a handover without waiting a lease.
func (a *App) Cleanup() error {
	if a.held {
		a.held = false
		if _, err := states.Delete(stateKey); err != nil {
			_ = a.cleanupCluster()
			return err
		}
	}
	return a.cleanupCluster()
}

// resolveSecrets expands runtime placeholders such as {env.NELLIS_TOKEN}
// in tokens and the cookie key. Written that way, secrets stay out of the
// JSON config (and so out of the admin API and autosave.json) and are read
// from the environment at each load.
func (a *App) resolveSecrets() error {
	repl := caddy.NewReplacer()
	for i := range a.Users {
		token := repl.ReplaceKnown(a.Users[i].Token, "")
		if token == "" {
			return fmt.Errorf("nellis: user %q: token is empty (is its environment variable set?)", a.Users[i].Name)
		}
		a.Users[i].Token = token
	}
	if a.JWT != nil && a.JWT.HMACKey != "" {
		raw := a.JWT.HMACKey
		a.JWT.HMACKey = repl.ReplaceKnown(raw, "")
		if a.JWT.HMACKey == "" {
			return fmt.Errorf("nellis: jwt: hmac_key: %s is empty (is the environment variable set?)",
				strings.Join(placeholderPattern.FindAllString(raw, -1), ""))
		}
	}
	if raw := a.CookieKey; raw != "" {
		a.CookieKey = repl.ReplaceKnown(raw, "")
		if a.CookieKey == "" {
			// Name the placeholders only: the rest of raw may be key material.
			return fmt.Errorf("nellis: cookie_key: %s is empty (is the environment variable set?); leave cookie_key out to keep cookies in memory only",
				strings.Join(placeholderPattern.FindAllString(raw, -1), ""))
		}
	}
	return nil
}

// placeholderPattern finds Caddy placeholders such as {env.NELLIS_COOKIE_KEY}.
var placeholderPattern = regexp.MustCompile(`\{[A-Za-z0-9_.\-]+\}`)

// addOrigins records the origins a handler of this config allows; the
// relay refuses every other browser origin.
func (a *App) addOrigins(origins []string) {
	a.originsMu.Lock()
	defer a.originsMu.Unlock()
	for _, o := range origins {
		if !slices.Contains(a.origins, o) {
			a.origins = append(a.origins, o)
		}
	}
}

// The packages' configs are the app's settings as they are; what is set
// here is only what the app holds elsewhere (endpoints, users, switches,
// origins, the logger). Each package's WithDefaults fills the rest.

func (a *App) clientConfig() nellis.ClientConfig {
	c := a.Upstream.clientConfig
	c.APIEndpoint = trimEndpoint(a.APIEndpoint, nellis.DefaultAPIEndpoint)
	c.Logger = a.logger.Named("snapshots")
	// Polls share the streams' transport: over h2 they ride the same
	// connections. (Provision sets it; without, the packages' defaults.)
	if a.transport != nil {
		c.HTTPClient = &http.Client{Transport: a.transport, Timeout: nellis.DefaultTimeout}
	}
	return c
}

func (a *App) hubConfig() hub.Config {
	u := a.Upstream
	c := u.hubConfig
	c.UseSSE = a.useSSE()
	if c.UseSSE {
		c.SSEPercent = a.ssePercent()
	}
	c.SSE = u.sseConfig
	c.SSE.Endpoint = trimEndpoint(a.SSEEndpoint, DefaultSSEEndpoint)
	if a.transport != nil {
		c.SSE.HTTPClient = &http.Client{Transport: a.transport}
	}
	c.Breaker = u.breakerConfig
	c.Poll = u.scheduleConfig
	c.Limiter = u.limiterConfig
	return c.WithDefaults()
}

func (a *App) biddingConfig() bidding.Config {
	c := a.Bidding.Config
	c.Off = a.Bidding.off()
	c.DryRun = a.Bidding.dryRun()
	return c
}

func (a *App) relayConfig(origins []string) wsrelay.Config {
	c := a.Relay
	c.Users = make(map[string]string, len(a.Users))
	for _, u := range a.Users {
		c.Users[u.Name] = u.Token
	}
	c.CookieKey = a.CookieKey
	if a.JWT != nil {
		c.JWT = *a.JWT
	}
	c.AllowedOrigins = origins
	// A product a user stopped watching counts against their limit as long
	// as its feed lingers.
	c.FeedLinger = time.Duration(a.Upstream.Linger)
	if a.Cluster != nil {
		c.SaveDelay = wsrelay.ClusterSaveDelay
	}
	return c.WithDefaults()
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
