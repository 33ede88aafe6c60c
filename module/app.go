// Package module is the Caddy glue of Nellis Edge: the `nellis` app that owns
// the upstream feeds and the connection registry, the HTTP handlers that hand
// requests to them, and their Caddyfile syntax. It parses, provisions,
// registers and hands over; the work happens in the packages below it.
package module

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/bidding"
	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
	"github.com/nellis-edge/gateway/tokens"
	"github.com/nellis-edge/gateway/wsrelay"
)

func init() {
	caddy.RegisterModule(new(App))
}

// DefaultSSEEndpoint is the default of App.SSEEndpoint. The API endpoint's
// is nellis.DefaultAPIEndpoint.
const DefaultSSEEndpoint = "https://sse.nellisauction.com"

// App is the `nellis` Caddy app. It owns one feed per watched product (an
// SSE subscription with polling fallback) and the registry of extension
// connections. Both live in a process-wide pool so a config reload neither
// reopens an upstream stream nor drops a client; a reload pushes the new
// settings into them.
type App struct {
	// Base URL of Nellis's SSE service. Default: https://sse.nellisauction.com.
	SSEEndpoint string `json:"sse_endpoint,omitempty"`

	// Base URL of Nellis's web site, for snapshots and bids.
	// Default: https://www.nellisauction.com.
	APIEndpoint string `json:"api_endpoint,omitempty"`

	// PEM file of CA certificates trusted for the SSE and API endpoints'
	// TLS, besides the system's roots: for a Nellis (or a simulator, a
	// proxy) behind a private authority. The certificate is always
	// verified. Default: the system's roots only.
	UpstreamCA string `json:"upstream_ca,omitempty"`

	// Whether products are followed over SSE: true, false, or the share
	// of lots ("5%", a canary), the rest polled. Off means polling only:
	// the emergency switch when Nellis's stream misbehaves. Default: true.
	UseSSE *SSEShare `json:"use_sse,omitempty"`

	// The users allowed to connect, each with their own token. The
	// Caddyfile's `auth_token` is one user named "default". Required
	// unless JWT is set.
	Users []User `json:"users,omitempty"`

	// Signed tokens (JWTs) accepted beside Users: the `jwt` block, whose
	// settings are tokens.Config's. A user named by a valid token is made
	// at their first sign-in. Default: none (only Users sign in).
	JWT *tokens.Config `json:"jwt,omitempty"`

	// Key that encrypts synced Nellis cookies at rest: 32 bytes, as 64 hex
	// digits or standard base64. Without it cookies stay in memory only.
	// Default: none.
	CookieKey string `json:"cookie_key,omitempty"`

	// Tuning of the upstream side. Every field has a documented default.
	Upstream UpstreamConfig `json:"upstream,omitzero"`

	// Limits of the extension side, shared by every `nellis_ws` and
	// `nellis_api` endpoint of the process: the relay's own settings.
	Relay wsrelay.Config `json:"relay,omitzero"`

	// Switches and limits of bidding.
	Bidding BiddingConfig `json:"bidding,omitzero"`

	// Cluster joins this gateway to others over NATS JetStream (the
	// `cluster` block, module/cluster.go). Without it no NATS code runs.
	// Default: none.
	Cluster *cluster.Config `json:"cluster,omitempty"`

	logger    *zap.Logger
	storage   wsrelay.Storage
	client    *nellis.Client
	transport *sseupstream.Transport // toward Nellis, shared by streams and polls
	hubCfg    hub.Config
	relayCfg  wsrelay.Config
	bidCfg    bidding.Config
	originsMu sync.Mutex
	origins   []string // from this config's handlers
	shared    *shared
	held      bool // this config holds a reference to shared

	clusterHold *clusterBus // this config's reference to the process's bus
}

// User is one bidder allowed to use the gateway.
type User struct {
	// Name identifies the user in storage and logs. Required, unique.
	Name string `json:"name"`
	// Token is the secret the extension sends in `authenticate` and the
	// REST Authorization header. Required, unique.
	Token string `json:"token"`
}

// UpstreamConfig is the `upstream` object: how products are followed on
// Nellis. Each setting is a field of the package that uses it, declared
// there with its doc and default and a JSON name equal to its Caddyfile
// subdirective; the packages' configs are embedded so that their settings
// sit side by side in one flat object.
type UpstreamConfig struct {
	sseConfig      // stall_timeout, backoff_base, backoff_max, healthy_after, max_event_size
	hubConfig      // max_streams, linger, history
	clientConfig   // snapshot_format
	scheduleConfig // poll_interval, poll_interval_closing, safety_poll_interval, hedge_poll_interval, closing_window
	limiterConfig  // poll_rate, poll_concurrency
	breakerConfig  // breaker_failures, breaker_open_after, breaker_cooldown
}

// The embedded configs under names of their own: several are called
// Config, and an embedded field is named after its type.
type (
	sseConfig      = sseupstream.Config
	hubConfig      = hub.Config
	clientConfig   = nellis.ClientConfig
	scheduleConfig = fallback.ScheduleConfig
	limiterConfig  = fallback.LimiterConfig
	breakerConfig  = fallback.BreakerConfig
)

// BiddingConfig is the `bidding` object: the switches of bidding, kept as
// pointers so that an explicit `bidding on` is a setting too and one
// contradicting it in another `nellis` block is reported, and the
// engine's own settings (bidding.Config).
type BiddingConfig struct {
	// Disabled answers every bid with a clear error and stops
	// auto-bidding (the Caddyfile's `bidding off`). Default: false.
	Disabled *bool `json:"disabled,omitempty"`
	// DryRun decides, logs and reports every bid without sending it.
	// Default: false.
	DryRun *bool `json:"dry_run,omitempty"`

	bidding.Config // bids_per_minute, buffer (bid_buffer), snipe_window, bid_timeout, bid_retention
}

// off reports the effective `bidding` switch: true for `bidding off`.
func (b BiddingConfig) off() bool { return b.Disabled != nil && *b.Disabled }

// dryRun reports the effective `dry_run` switch.
func (b BiddingConfig) dryRun() bool { return b.DryRun != nil && *b.DryRun }

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "nellis",
		New: func() caddy.Module { return new(App) },
	}
}

// useSSE reports whether `use_sse` follows any lot by SSE.
func (a *App) useSSE() bool { return a.ssePercent() > 0 }

// ssePercent is the effective `use_sse` share of lots, in percent.
func (a *App) ssePercent() float64 {
	if a.UseSSE == nil {
		return 100
	}
	return float64(*a.UseSSE)
}

// Validate checks the settings that need no network: it is what `caddy
// validate` and `caddy adapt --validate` run.
func (a *App) Validate() error {
	var errs []error
	for _, e := range []struct{ name, raw string }{
		{"sse_endpoint", a.SSEEndpoint},
		{"api_endpoint", a.APIEndpoint},
	} {
		if e.raw == "" {
			continue
		}
		if err := checkEndpoint(e.raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.name, err))
		}
	}
	if len(a.Users) == 0 && a.JWT == nil {
		errs = append(errs, errors.New("no users: set auth_token, at least one user or jwt"))
	}
	// A jwt object needs a key (Provision has resolved a placeholder in
	// it by now); its errors name the setting or file, never the key.
	if a.JWT != nil {
		if err := a.JWT.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	// Users become a map for the relay, which checks names, tokens and the
	// cookie key when Provision builds its config; only a name given twice
	// would vanish in that map, so it is checked here.
	names := make(map[string]bool)
	for _, u := range a.Users {
		if names[u.Name] {
			errs = append(errs, fmt.Errorf("user %q given twice", u.Name))
		}
		names[u.Name] = true
	}
	// Each package checks its own settings. The stream's are checked even
	// with use_sse off, so that turning it on later cannot fail.
	hubCfg := a.hubConfig()
	hubCfg.UseSSE = true
	if err := hubCfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := a.Bidding.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := a.validateCluster(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkEndpoint accepts an absolute http or https URL without a query.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("invalid URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("invalid URL %q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("invalid URL %q: must not have a query or fragment", raw)
	}
	return nil
}

// trimEndpoint drops a trailing slash so paths join cleanly.
func trimEndpoint(raw, def string) string {
	if raw == "" {
		return def
	}
	return strings.TrimRight(raw, "/")
}
