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
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/bidding"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/wsrelay"
)

func init() {
	caddy.RegisterModule(new(App))
}

// Defaults of the app's settings. Each field's doc repeats its default.
const (
	DefaultSSEEndpoint = "https://sse.nellisauction.com"
	DefaultAPIEndpoint = "https://www.nellisauction.com"
)

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

	// Whether products are followed over SSE. Off means polling only: the
	// emergency switch when Nellis's stream misbehaves. Default: true.
	UseSSE *bool `json:"use_sse,omitempty"`

	// The users allowed to connect, each with their own token. The
	// Caddyfile's `auth_token` is one user named "default". Required.
	Users []User `json:"users,omitempty"`

	// Key that encrypts synced Nellis cookies at rest: 32 bytes, as 64 hex
	// digits or standard base64. Without it cookies stay in memory only.
	// Default: none.
	CookieKey string `json:"cookie_key,omitempty"`

	// Tuning of the upstream side. Every field has a documented default.
	Upstream UpstreamConfig `json:"upstream,omitzero"`

	// Limits of the extension side shared by every endpoint.
	Relay RelayConfig `json:"relay,omitzero"`

	// Switches and limits of bidding.
	Bidding BiddingConfig `json:"bidding,omitzero"`

	logger    *zap.Logger
	storage   wsrelay.Storage
	client    *nellis.Client
	hubCfg    hub.Config
	relayCfg  wsrelay.Config
	bidCfg    bidding.Config
	originsMu sync.Mutex
	origins   []string // from this config's handlers
	shared    *shared
	held      bool // this config holds a reference to shared
}

// User is one bidder allowed to use the gateway.
type User struct {
	// Name identifies the user in storage and logs. Required, unique.
	Name string `json:"name"`
	// Token is the secret the extension sends in `authenticate` and the
	// REST Authorization header. Required, unique.
	Token string `json:"token"`
}

// UpstreamConfig tunes how products are followed on Nellis.
type UpstreamConfig struct {
	// No byte (pings included) for this long means a stream is stalled and
	// is replaced; so does no whole line for three times this long (bytes
	// trickling in). Default: 3s.
	StallTimeout caddy.Duration `json:"stall_timeout,omitempty"`
	// First reconnect delay cap; delays grow from here with full jitter.
	// Default: 1s.
	BackoffBase caddy.Duration `json:"backoff_base,omitempty"`
	// Largest reconnect delay. Default: 15s.
	BackoffMax caddy.Duration `json:"backoff_max,omitempty"`
	// A stream up this long resets the reconnect delay. Default: 30s.
	HealthyAfter caddy.Duration `json:"healthy_after,omitempty"`
	// Largest SSE event accepted, in bytes. Default: 1 MiB.
	MaxEventSize int `json:"max_event_size,omitempty"`
	// Most upstream streams open at once; further products are polled.
	// Default: 1000.
	MaxStreams int `json:"max_streams,omitempty"`
	// How long a feed stays open after its last subscriber left. Default: 30s.
	Linger caddy.Duration `json:"linger,omitempty"`
	// Changes each feed keeps for clients that resume. Default: 64.
	History int `json:"history,omitempty"`
	// Snapshot format: auto, json, data or html. Default: auto.
	SnapshotFormat string `json:"snapshot_format,omitempty"`
	// Poll interval while a product has no healthy stream. Default: 2s.
	PollInterval caddy.Duration `json:"poll_interval,omitempty"`
	// Poll interval without a healthy stream in the closing window.
	// Default: 1s.
	PollIntervalClosing caddy.Duration `json:"poll_interval_closing,omitempty"`
	// Safety-net poll interval while the stream is healthy. Default: 30s.
	SafetyPollInterval caddy.Duration `json:"safety_poll_interval,omitempty"`
	// Hedging poll interval with a healthy stream in the closing window.
	// Default: 2s.
	HedgePollInterval caddy.Duration `json:"hedge_poll_interval,omitempty"`
	// The closing window: time left under which polls speed up. Default: 60s.
	ClosingWindow caddy.Duration `json:"closing_window,omitempty"`
	// Snapshot requests per second toward Nellis, across all products.
	// Default: 10.
	PollRate float64 `json:"poll_rate,omitempty"`
	// Snapshot requests in flight at once, across all products. Default: 4.
	PollConcurrency int `json:"poll_concurrency,omitempty"`
	// Consecutive stream failures that open a product's breaker. Default: 3.
	BreakerFailures int `json:"breaker_failures,omitempty"`
	// Time without a healthy stream that opens the breaker. Default: 20s.
	BreakerOpenAfter caddy.Duration `json:"breaker_open_after,omitempty"`
	// Cool-down before an open breaker probes SSE again (jittered).
	// Default: 10s.
	BreakerCooldown caddy.Duration `json:"breaker_cooldown,omitempty"`
}

// RelayConfig holds the limits of the extension side, shared by every
// `nellis_ws` and `nellis_api` endpoint of the process.
type RelayConfig struct {
	// Most auctions one user may monitor. Default: 200.
	MaxAuctions int `json:"max_auctions,omitempty"`
	// Largest client message in bytes once the socket has signed in;
	// larger closes the socket with 1009. Default: 1 MiB.
	MaxMessageSize int `json:"max_message_size,omitempty"`
	// Sockets one client address may open per minute; more get 429 before
	// the upgrade. An address is an IPv4 address or an IPv6 /64, for every
	// per-address limit. Default: 30.
	ConnectionsPerMinute int `json:"connections_per_minute,omitempty"`
	// Sustained client messages per second per socket. Default: 20.
	MessagesPerSecond float64 `json:"messages_per_second,omitempty"`
	// Client messages a socket may send at once above that rate.
	// Default: 40.
	MessageBurst int `json:"message_burst,omitempty"`
	// Different products one user may watch at once, monitored and
	// subscribed on all their sockets together. Default: max_auctions.
	MaxProductsPerUser int `json:"max_products_per_user,omitempty"`
	// Sockets signed in as one user at once; an authenticate beyond it is
	// refused with a reason. Default: 20.
	MaxSocketsPerUser int `json:"max_sockets_per_user,omitempty"`
	// Sockets open without a successful authenticate; more get 503.
	// Default: 1000.
	MaxUnauthenticated int `json:"max_unauthenticated,omitempty"`
	// Sockets one client address may hold open without a successful
	// authenticate; more get 429. Default: 8.
	MaxUnauthenticatedPerAddress int `json:"max_unauthenticated_per_address,omitempty"`
	// How long a socket may stay open without a successful authenticate
	// before it is closed with 1008 "authentication timeout". Default: 10s.
	AuthTimeout caddy.Duration `json:"auth_timeout,omitempty"`
	// Largest client message in bytes before the socket has signed in;
	// larger closes it with 1009. Default: 4 KiB.
	MaxUnauthenticatedMessageSize int `json:"max_unauthenticated_message_size,omitempty"`
	// Longest one client message may take from its first frame to its last
	// fragment (pings do not extend it); then the socket is closed with
	// 1008 "message timeout". Default: 10s.
	MessageTimeout caddy.Duration `json:"message_timeout,omitempty"`
	// Failed authenticate messages a socket may send; the last closes it
	// with 1008. Default: 3.
	AuthFailures int `json:"auth_failures,omitempty"`
	// Failed authentications one client address may make per minute,
	// sockets and REST together; beyond it REST answers 429 and sockets
	// are closed, without the token being checked. Default: 10.
	AuthFailuresPerMinute int `json:"auth_failures_per_minute,omitempty"`
	// Messages waiting for one socket before it counts as stuck.
	// Default: 256.
	QueueSize int `json:"queue_size,omitempty"`
	// How long one write may take before the client is closed with 4008.
	// Default: 10s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// WebSocket ping interval. Default: 30s.
	PingInterval caddy.Duration `json:"ping_interval,omitempty"`
	// Application heartbeat interval that keeps a Chrome MV3 service
	// worker alive; at most 20s. Default: 15s.
	HeartbeatInterval caddy.Duration `json:"heartbeat_interval,omitempty"`
}

// BiddingConfig holds the switches and limits of bidding: manual bids
// (`placeBid`, `POST /api/auctions/{id}/bid`) and auto-bidding.
type BiddingConfig struct {
	// Disabled answers every bid with a clear error and stops
	// auto-bidding (the Caddyfile's `bidding off`). A pointer, so that an
	// explicit `bidding on` is a setting too, and one contradicting it in
	// another `nellis` block is reported. Default: false.
	Disabled *bool `json:"disabled,omitempty"`
	// DryRun decides, logs and reports every bid without sending it; a
	// pointer for the same reason. Default: false.
	DryRun *bool `json:"dry_run,omitempty"`
	// Most bids one user may place on one auction in any minute, manual
	// and automatic together. Default: 10.
	BidsPerMinute int `json:"bids_per_minute,omitempty"`
	// Whole dollars the auto strategy adds to the next bid. Default: 0.
	Buffer int `json:"buffer,omitempty"`
	// Time left under which the sniping strategy bids, unless an auction
	// sets snipeSeconds. Default: 10s.
	SnipeWindow caddy.Duration `json:"snipe_window,omitempty"`
	// Longest wait for Nellis's answer to one bid. Default: 10s.
	BidTimeout caddy.Duration `json:"bid_timeout,omitempty"`
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

// useSSE reports the effective `use_sse` setting.
func (a *App) useSSE() bool { return a.UseSSE == nil || *a.UseSSE }

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
	if len(a.Users) == 0 {
		errs = append(errs, errors.New("no users: set auth_token or at least one user"))
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
	if err := a.Upstream.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (u UpstreamConfig) validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		val  caddy.Duration
	}{
		{"stall_timeout", u.StallTimeout}, {"backoff_base", u.BackoffBase},
		{"backoff_max", u.BackoffMax}, {"healthy_after", u.HealthyAfter},
		{"linger", u.Linger}, {"poll_interval", u.PollInterval},
		{"poll_interval_closing", u.PollIntervalClosing},
		{"safety_poll_interval", u.SafetyPollInterval},
		{"hedge_poll_interval", u.HedgePollInterval},
		{"closing_window", u.ClosingWindow},
		{"breaker_open_after", u.BreakerOpenAfter}, {"breaker_cooldown", u.BreakerCooldown},
	} {
		if d.val < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", d.name, time.Duration(d.val)))
		}
	}
	if u.BackoffBase > 0 && u.BackoffMax > 0 && u.BackoffMax < u.BackoffBase {
		errs = append(errs, errors.New("backoff_max: must not be below backoff_base"))
	}
	for _, n := range []struct {
		name string
		val  int
	}{
		{"max_event_size", u.MaxEventSize}, {"max_streams", u.MaxStreams},
		{"history", u.History}, {"poll_concurrency", u.PollConcurrency},
		{"breaker_failures", u.BreakerFailures},
	} {
		if n.val < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %d", n.name, n.val))
		}
	}
	if u.PollRate < 0 {
		errs = append(errs, fmt.Errorf("poll_rate: must not be negative, got %g", u.PollRate))
	}
	switch u.SnapshotFormat {
	case "", "auto", "json", "data", "html":
	default:
		errs = append(errs, fmt.Errorf("snapshot_format: want auto, json, data or html, got %q", u.SnapshotFormat))
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
