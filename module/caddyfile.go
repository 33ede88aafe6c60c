package module

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/dustin/go-humanize"

	"github.com/nellis-edge/gateway/bidding"
	"github.com/nellis-edge/gateway/settings"
	"github.com/nellis-edge/gateway/tokens"
	"github.com/nellis-edge/gateway/wsrelay"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("nellis", parseGlobalOption)
}

// parseGlobalOption sets up the `nellis` app from the global option of the
// same name. Given twice, the blocks merge; a setting given twice with
// different values is an error naming the second place.
//
// Syntax:
//
//	nellis {
//		<subdirective> <arguments...>
//		...
//	}
//
// One line per setting; the subdirectives, their arguments and defaults are
// the table in README.md, and each is one case of setOption writing the
// package Config field of the same JSON name (docs/architecture.md,
// "Adding a setting"). `user` may repeat; `auth_token <token>` is the user "default".
// `jwt { … }` is the one block (parseJWT).
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if existing != nil {
		prev, ok := existing.(httpcaddyfile.App)
		if !ok {
			return nil, d.Errf("unexpected existing value %T for nellis", existing)
		}
		if err := caddy.StrictUnmarshalJSON(prev.Value, app); err != nil {
			return nil, d.Errf("reading the earlier nellis block: %v", err)
		}
	}
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	if len(app.Users) == 0 && app.JWT == nil {
		return nil, d.Err("nellis: no users: set auth_token <token>, user <name> <token> or a jwt block")
	}
	return httpcaddyfile.App{Name: "nellis", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile reads one `nellis` block into a, which may already
// hold an earlier block's settings: a setting given again must have the
// same value.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		name := d.Val()
		if name == "cluster" { // the one setting with a block: module/cluster.go
			one := new(App)
			if err := one.parseCluster(d); err != nil {
				return err
			}
			if err := a.merge(one); err != nil {
				return d.Errf("cluster: %v", err)
			}
			continue
		}
		args := d.RemainingArgs()
		// Each setting is parsed alone, then merged, so a repeat with
		// another value is caught whichever block it came from.
		one := new(App)
		if name == "jwt" {
			if err := one.parseJWT(d, args); err != nil {
				return err
			}
		} else {
			if d.NextBlock(1) {
				return d.Errf("%s: takes no block", name)
			}
			if err := one.setOption(d, name, args); err != nil {
				return err
			}
		}
		if err := a.merge(one); err != nil {
			return d.Errf("%s: %v", name, err)
		}
	}
	return nil
}

// setOption applies one subdirective. d is positioned on its last token,
// so d.Errf names the right line.
func (a *App) setOption(d *caddyfile.Dispenser, name string, args []string) error {
	one := func() (string, error) {
		if len(args) != 1 {
			return "", d.Errf("%s: want exactly one argument, got %d", name, len(args))
		}
		return args[0], nil
	}
	duration := func(dst *settings.Duration) error {
		raw, err := one()
		if err != nil {
			return err
		}
		dur, err := settings.ParseDuration(raw)
		if err != nil {
			return d.Errf("%s: invalid duration %q", name, raw)
		}
		if dur <= 0 {
			return d.Errf("%s: must be positive, got %q", name, raw)
		}
		*dst = settings.Duration(dur)
		return nil
	}
	count := func(dst *int) error {
		raw, err := one()
		if err != nil {
			return err
		}
		n, err := positiveInt(raw)
		if err != nil {
			return d.Errf("%s: %v", name, err)
		}
		*dst = n
		return nil
	}
	size := func(dst *int64) error {
		raw, err := one()
		if err != nil {
			return err
		}
		n, err := humanize.ParseBytes(raw)
		if err != nil || n == 0 || n > 1<<30 {
			return d.Errf("%s: want a size between 1B and 1GiB, got %q", name, raw)
		}
		*dst = int64(n)
		return nil
	}
	up := &a.Upstream
	switch name {
	case "sse_endpoint", "api_endpoint":
		raw, err := one()
		if err != nil {
			return err
		}
		if err := checkEndpoint(raw); err != nil {
			return d.Errf("%s: %v", name, err)
		}
		if name == "sse_endpoint" {
			a.SSEEndpoint = raw
		} else {
			a.APIEndpoint = raw
		}
	case "upstream_ca":
		raw, err := one()
		if err != nil {
			return err
		}
		// Read now so a wrong path fails `caddy validate` on this line; it
		// is read again at each load, so a renewed file applies on reload.
		if _, _, err := loadUpstreamCA(raw); err != nil {
			return d.Err(err.Error())
		}
		a.UpstreamCA = raw
	case "use_sse":
		raw, err := one()
		if err != nil {
			return err
		}
		share, err := parseSSEShare(raw)
		if err != nil {
			return d.Errf("use_sse: %v", err)
		}
		a.UseSSE = &share
	case "auth_token":
		raw, err := one()
		if err != nil {
			return err
		}
		return a.addUser(d, "default", raw)
	case "user":
		if len(args) != 2 {
			return d.Errf("user: want <name> <token>, got %d arguments", len(args))
		}
		return a.addUser(d, args[0], args[1])
	case "cookie_key":
		// An unset {$VAR} leaves no argument, a quoted one an empty one:
		// either way the key the operator meant to give is missing, and
		// running without one would keep cookies in memory only.
		if len(args) == 0 || (len(args) == 1 && args[0] == "") {
			return d.Errf("cookie_key: empty (is its environment variable set?); leave cookie_key out to keep cookies in memory only")
		}
		raw, err := one()
		if err != nil {
			return err
		}
		// A runtime placeholder ({env.NELLIS_COOKIE_KEY}) is checked when
		// it is resolved, at provisioning.
		if !strings.Contains(raw, "{") {
			if _, err := wsrelay.ParseCookieKey(raw); err != nil {
				return d.Err(err.Error()) // it names cookie_key, never the key
			}
		}
		a.CookieKey = raw
	case "snapshot_format":
		raw, err := one()
		if err != nil {
			return err
		}
		switch raw {
		case "auto", "json", "data", "html":
			up.Format = raw
		default:
			return d.Errf("snapshot_format: want auto, json, data or html, got %q", raw)
		}
	case "stall_timeout":
		return duration(&up.StallTimeout)
	case "backoff_base":
		return duration(&up.BackoffBase)
	case "backoff_max":
		return duration(&up.BackoffMax)
	case "healthy_after":
		return duration(&up.HealthyAfter)
	case "linger":
		return duration(&up.Linger)
	case "poll_interval":
		return duration(&up.Fallback)
	case "poll_interval_closing":
		return duration(&up.FallbackClosing)
	case "safety_poll_interval":
		return duration(&up.SafetyNet)
	case "hedge_poll_interval":
		return duration(&up.Hedge)
	case "closing_window":
		return duration(&up.ClosingWindow)
	case "breaker_open_after":
		return duration(&up.OpenAfter)
	case "breaker_cooldown":
		return duration(&up.CoolDown)
	case "max_event_size":
		var n int64
		if err := size(&n); err != nil {
			return err
		}
		up.MaxEventSize = int(n)
	case "max_streams":
		return count(&up.MaxStreams)
	case "stream_closing_margin":
		return duration(&up.StreamClosingMargin)
	case "history":
		return count(&up.History)
	case "poll_concurrency":
		return count(&up.MaxInFlight)
	case "breaker_failures":
		return count(&up.Failures)
	case "poll_rate":
		raw, err := one()
		if err != nil {
			return err
		}
		rate, err := strconv.ParseFloat(raw, 64)
		if err != nil || rate <= 0 {
			return d.Errf("poll_rate: want a positive number of requests per second, got %q", raw)
		}
		up.Rate = rate
	case "max_auctions":
		return count(&a.Relay.MaxAuctions)
	case "max_products_per_user":
		return count(&a.Relay.MaxProductsPerUser)
	case "max_sockets_per_user":
		return count(&a.Relay.MaxSocketsPerUser)
	case "max_message_size":
		return size(&a.Relay.MaxMessageSize)
	case "connections_per_minute":
		return count(&a.Relay.ConnectionsPerMinute)
	case "messages_per_second":
		raw, err := one()
		if err != nil {
			return err
		}
		rate, err := strconv.ParseFloat(raw, 64)
		if err != nil || rate <= 0 {
			return d.Errf("messages_per_second: want a positive number, got %q", raw)
		}
		a.Relay.MessagesPerSecond = rate
	case "message_burst":
		return count(&a.Relay.MessageBurst)
	case "max_unauthenticated":
		return count(&a.Relay.MaxUnauthenticated)
	case "max_unauthenticated_per_address":
		return count(&a.Relay.MaxUnauthenticatedPerAddress)
	case "auth_timeout":
		return duration(&a.Relay.AuthTimeout)
	case "max_unauthenticated_message_size":
		return size(&a.Relay.MaxUnauthenticatedMessageSize)
	case "message_timeout":
		return duration(&a.Relay.MessageTimeout)
	case "user_retention":
		return duration(&a.Relay.UserRetention)
	case "auth_failures":
		return count(&a.Relay.AuthFailures)
	case "auth_failures_per_minute":
		return count(&a.Relay.AuthFailuresPerMinute)
	case "queue_size":
		return count(&a.Relay.QueueSize)
	case "write_timeout":
		return duration(&a.Relay.WriteTimeout)
	case "ping_interval":
		return duration(&a.Relay.PingInterval)
	case "heartbeat_interval":
		if err := duration(&a.Relay.HeartbeatInterval); err != nil {
			return err
		}
		if time.Duration(a.Relay.HeartbeatInterval) > 20*time.Second {
			return d.Errf("heartbeat_interval: at most 20s, or Chrome suspends the extension's service worker")
		}
	case "bidding", "dry_run":
		raw, err := one()
		if err != nil {
			return err
		}
		on, err := parseSwitch(raw)
		if err != nil {
			return d.Errf("%s: %v", name, err)
		}
		if name == "bidding" {
			off := !on
			a.Bidding.Disabled = &off
		} else {
			a.Bidding.DryRun = &on
		}
	case "bids_per_minute":
		return count(&a.Bidding.BidsPerMinute)
	case "bid_buffer":
		return count(&a.Bidding.Buffer)
	case "snipe_window":
		return duration(&a.Bidding.SnipeWindow)
	case "bid_timeout":
		return duration(&a.Bidding.BidTimeout)
	case "bid_retention":
		if err := duration(&a.Bidding.BidRetention); err != nil {
			return err
		}
		if time.Duration(a.Bidding.BidRetention) < bidding.MinBidRetention {
			return d.Errf("bid_retention: must be at least %s, got %s", bidding.MinBidRetention, time.Duration(a.Bidding.BidRetention))
		}
	default:
		return d.Errf("unrecognized subdirective %q", name)
	}
	return nil
}

// addUser adds a user; the error for a duplicate names the user, never
// the token.
func (a *App) addUser(d *caddyfile.Dispenser, name, token string) error {
	if token == "" {
		return d.Errf("user %q: empty token (is its environment variable set?)", name)
	}
	for _, u := range a.Users {
		if u.Name == name {
			return d.Errf("user %q given twice", name)
		}
		if u.Token == token {
			return d.Errf("users %q and %q share a token", u.Name, name)
		}
	}
	a.Users = append(a.Users, User{Name: name, Token: token})
	return nil
}

// parseSwitch reads on/off (and the usual synonyms, so an environment
// variable holding "true" or "0" works too).
func parseSwitch(raw string) (bool, error) {
	switch raw {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("want on or off, got %q", raw)
}

// parseJWT reads the `jwt` block: the keys signed tokens are checked
// with and the claims required. d is on `jwt`.
//
// Syntax:
//
//	jwt {
//		hmac_key   <key>      # at least 32 bytes; {env.VAR} keeps it out of the JSON
//		public_key <pem file> # repeatable
//		issuer     <iss>
//		audience   <aud>
//		user_claim <claim>    # default sub
//		leeway     <duration> # default 30s
//	}
//
// At least one key is required. Errors never quote the HMAC key.
func (a *App) parseJWT(d *caddyfile.Dispenser, args []string) error {
	if len(args) != 0 {
		return d.Errf("jwt: takes a block, not arguments")
	}
	cfg := new(tokens.Config)
	seen := make(map[string]bool)
	for d.NextBlock(1) {
		name := d.Val()
		sub := d.RemainingArgs()
		if d.NextBlock(2) {
			return d.Errf("jwt: %s: takes no block", name)
		}
		if name != "public_key" && seen[name] {
			return d.Errf("jwt: %s given twice", name)
		}
		seen[name] = true
		if len(sub) != 1 || sub[0] == "" {
			if name == "hmac_key" {
				return d.Errf("jwt: hmac_key: want one non-empty key (is its environment variable set?)")
			}
			return d.Errf("jwt: %s: want exactly one argument, got %d", name, len(sub))
		}
		arg := sub[0]
		switch name {
		case "hmac_key":
			// A runtime placeholder ({env.NELLIS_JWT_KEY}) is checked
			// when it is resolved, at provisioning.
			if !strings.Contains(arg, "{") && len(arg) < tokens.MinHMACKeyLength {
				return d.Errf("jwt: hmac_key: must be at least %d bytes, got %d", tokens.MinHMACKeyLength, len(arg))
			}
			cfg.HMACKey = arg
		case "public_key":
			cfg.PublicKeys = append(cfg.PublicKeys, arg)
		case "issuer":
			cfg.Issuer = arg
		case "audience":
			cfg.Audience = arg
		case "user_claim":
			cfg.UserClaim = arg
		case "leeway":
			dur, err := settings.ParseDuration(arg)
			if err != nil || dur < 0 {
				return d.Errf("jwt: leeway: invalid duration %q", arg)
			}
			cfg.Leeway = settings.Duration(dur)
		default:
			return d.Errf("jwt: unrecognized subdirective %q", name)
		}
	}
	if !cfg.Enabled() {
		return d.Errf("jwt: no key: set hmac_key or public_key")
	}
	// The files are read now so that a missing or bad one is reported at
	// its line; a key behind a placeholder is checked at provisioning.
	check := *cfg
	if strings.Contains(check.HMACKey, "{") {
		check.HMACKey = strings.Repeat("x", tokens.MinHMACKeyLength)
	}
	if err := check.Validate(); err != nil {
		return d.Errf("%v", err)
	}
	a.JWT = cfg
	return nil
}
