package wsrelay

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/nellis-edge/gateway/settings"
	"github.com/nellis-edge/gateway/tokens"
)

// Config holds the relay's settings. The zero value of every field selects
// its default; UpdateConfig applies a new Config to open connections in place.
// A field with a JSON name is a setting of the Caddy app's `nellis` block by
// that name (the app's `relay` object is this struct); the others the app
// fills from its own settings.
type Config struct {
	// Users maps a user name (1-64 of A-Z, a-z, 0-9, _ and -) to that user's
	// token. Each user has their own monitored auctions, configs and cookies.
	// Default: none.
	Users map[string]string `json:"-"`

	// CookieKey encrypts users' Nellis cookies at rest with AES-256-GCM. It is
	// 32 bytes written as 64 hex digits or as base64 (standard or URL
	// alphabet, padded or not). Without it cookies are kept in memory only.
	// Default: none.
	CookieKey string `json:"-"`

	// AllowedOrigins lists the exact Origin header values (for example
	// "chrome-extension://abcdefghijklmnopabcdefghijklmnop") allowed to open a
	// socket or call the REST API; "*" allows any origin. A request without an
	// Origin header (a non-browser client) is allowed and still needs a token.
	// Default: none, so every browser origin is refused.
	AllowedOrigins []string `json:"-"`

	// MaxAuctions is how many auctions one user may monitor.
	// Default: 200.
	MaxAuctions int `json:"max_auctions,omitempty"`

	// MaxMessageSize is the largest client message in bytes once the
	// socket has authenticated (MaxUnauthenticatedMessageSize applies
	// before); a larger one closes the socket with code 1009.
	// Default: 1 MiB.
	MaxMessageSize int64 `json:"max_message_size,omitempty"`

	// ConnectionsPerMinute is how many sockets one client address may open
	// per minute; beyond that the upgrade is answered 429. An address is a
	// whole IPv4 address or an IPv6 /64 (an IPv4-mapped IPv6 address counts
	// as IPv4), since one IPv6 host commonly holds a whole /64. Default: 30.
	ConnectionsPerMinute int `json:"connections_per_minute,omitempty"`

	// MessagesPerSecond is the sustained rate of client messages per socket;
	// an excess message gets an error reply. Default: 20.
	MessagesPerSecond float64 `json:"messages_per_second,omitempty"`

	// MessageBurst is how many client messages a socket may send at once
	// above MessagesPerSecond. A socket that keeps flooding after its excess
	// messages were refused for another burst is closed with code 1008.
	// Default: 40.
	MessageBurst int `json:"message_burst,omitempty"`

	// MaxProductsPerUser is how many different products one user may
	// watch at once, monitored and subscribed on all their sockets
	// together: each is upstream work (a feed, a stream, snapshots).
	// Default: MaxAuctions.
	MaxProductsPerUser int `json:"max_products_per_user,omitempty"`

	// FeedLinger is how long the hub keeps a product's feed open after its
	// last watcher left (the upstream `linger`). A product a user stopped
	// watching counts against MaxProductsPerUser that long, so churning
	// through products never keeps more feeds open upstream than the
	// limit. Default: 30s.
	FeedLinger time.Duration `json:"-"`

	// MaxSocketsPerUser is how many sockets may be signed in as one user
	// at once; an authenticate beyond it is refused with a reason and the
	// sockets already signed in stay. Default: 20.
	MaxSocketsPerUser int `json:"max_sockets_per_user,omitempty"`

	// MaxUnauthenticated caps the sockets open without a successful
	// authenticate, all addresses together; beyond it the upgrade is
	// answered 503. Default: 1000.
	MaxUnauthenticated int `json:"max_unauthenticated,omitempty"`

	// MaxUnauthenticatedPerAddress caps the sockets one client address (as
	// for ConnectionsPerMinute) holds open without a successful
	// authenticate; beyond it the upgrade is answered 429. It keeps one
	// address from filling MaxUnauthenticated and locking everyone out
	// before sign-in: an extension is unauthenticated only for a moment
	// after each connect. Default: 8.
	MaxUnauthenticatedPerAddress int `json:"max_unauthenticated_per_address,omitempty"`

	// AuthTimeout is how long a socket may stay open without a successful
	// authenticate, parked or not; then it is closed with code 1008
	// "authentication timeout". A socket a reload signs out gets as long
	// again. Default: 10s.
	AuthTimeout settings.Duration `json:"auth_timeout,omitempty"`

	// MaxUnauthenticatedMessageSize is the largest client message in bytes
	// before the socket has authenticated (MaxMessageSize applies after);
	// a larger one closes the socket with code 1009. An authenticate
	// message is well under 1 KiB. Default: 4 KiB.
	MaxUnauthenticatedMessageSize int64 `json:"max_unauthenticated_message_size,omitempty"`

	// MessageTimeout is the longest one client message may take to arrive,
	// from its first frame to its last fragment; pings and pongs in
	// between do not extend it. A socket that overruns it is closed with
	// code 1008 "message timeout", so a message begun and never finished
	// cannot hold its buffer. Default: 10s.
	MessageTimeout settings.Duration `json:"message_timeout,omitempty"`

	// AuthFailures is how many failed authenticate messages a socket may
	// send; the last is answered, then the socket is closed with code 1008.
	// Default: 3.
	AuthFailures int `json:"auth_failures,omitempty"`

	// AuthFailuresPerMinute is the failed authentications one client
	// address (as for ConnectionsPerMinute) may make per minute, on
	// sockets and the REST API together. Once spent, the address's
	// authenticate closes the socket and its REST calls get 429, without
	// the token being checked, until the budget refills. Default: 10.
	AuthFailuresPerMinute int `json:"auth_failures_per_minute,omitempty"`

	// QueueSize bounds the messages waiting to be written to one socket. A
	// newer auctionState for an auction replaces an unsent older one, so the
	// queue fills only when a client stops reading; then it is closed with
	// code 4008. Default: 256.
	QueueSize int `json:"queue_size,omitempty"`

	// WriteTimeout is how long one write may take before the client counts
	// as stuck and is closed with code 4008 "slow". Default: 10s.
	WriteTimeout settings.Duration `json:"write_timeout,omitempty"`

	// PingInterval is how often a WebSocket ping is sent. A socket that sends
	// nothing (not even a pong) for twice this long is closed. Default: 30s.
	PingInterval settings.Duration `json:"ping_interval,omitempty"`

	// HeartbeatInterval is the longest a socket goes without a message:
	// one that has had none for most of it gets the application message
	// {"type":"heartbeat","ts":<ms>}, which keeps a Chrome MV3 service
	// worker alive; it must not exceed 20s. Default: 15s.
	HeartbeatInterval settings.Duration `json:"heartbeat_interval,omitempty"`

	// JWT verifies signed tokens (package tokens): a user named by a valid
	// token signs in beside the configured Users, and their data is made
	// at the first sign-in. The zero value accepts none. Default: none.
	JWT tokens.Config `json:"-"`

	// UserRetention is how long a user known only from signed tokens
	// keeps their stored data without signing in; a sweep at start and
	// daily removes the records of those who have not signed in for this
	// long. Default: 2160h (90 days).
	UserRetention settings.Duration `json:"user_retention,omitempty"`

	// SaveDelay is how long changes to a user's data are collected before
	// they are written to storage. Shutdown writes pending changes at once.
	// In cluster mode the module sets ClusterSaveDelay: the other nodes see
	// a change only once it is saved. Default: 250ms.
	SaveDelay time.Duration `json:"-"`
}

// The defaults of Config.
const (
	DefaultMaxMessageSize                = 1 << 20
	DefaultConnectionsPerMinute          = 30
	DefaultMessagesPerSecond             = 20
	DefaultMessageBurst                  = 40
	DefaultMaxAuctions                   = 200
	DefaultMaxSocketsPerUser             = 20
	DefaultFeedLinger                    = 30 * time.Second
	DefaultMaxUnauthenticated            = 1000
	DefaultMaxUnauthenticatedPerAddress  = 8
	DefaultAuthTimeout                   = 10 * time.Second
	DefaultMaxUnauthenticatedMessageSize = 4 << 10
	DefaultMessageTimeout                = 10 * time.Second
	DefaultAuthFailures                  = 3
	DefaultAuthFailuresPerMinute         = 10
	DefaultQueueSize                     = 256
	DefaultWriteTimeout                  = 10 * time.Second
	DefaultPingInterval                  = 30 * time.Second
	DefaultHeartbeatInterval             = 15 * time.Second
	DefaultSaveDelay                     = 250 * time.Millisecond
	// ClusterSaveDelay is SaveDelay in cluster mode: a user's change is on
	// every node within 250 ms (issue 15), which leaves no room for the
	// 250 ms a single node spends collecting changes to spare its disk.
	// A burst of changes within it is still one write.
	ClusterSaveDelay     = 10 * time.Millisecond
	DefaultUserRetention = 90 * 24 * time.Hour

	// minTokenLength is the length under which a token draws a warning
	// at start: a short token can be guessed.
	minTokenLength = 16

	// maxHeartbeatInterval keeps a Chrome MV3 service worker alive: Chrome
	// suspends one after 30 s without an event.
	maxHeartbeatInterval = 20 * time.Second
)

var userNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// WithDefaults returns a copy of c with every unset field at its default.
func (c Config) WithDefaults() Config {
	setDefault(&c.MaxMessageSize, DefaultMaxMessageSize)
	setDefault(&c.ConnectionsPerMinute, DefaultConnectionsPerMinute)
	setDefault(&c.MessagesPerSecond, DefaultMessagesPerSecond)
	setDefault(&c.MessageBurst, DefaultMessageBurst)
	setDefault(&c.MaxAuctions, DefaultMaxAuctions)
	setDefault(&c.MaxProductsPerUser, c.MaxAuctions)
	setDefault(&c.MaxSocketsPerUser, DefaultMaxSocketsPerUser)
	setDefault(&c.FeedLinger, DefaultFeedLinger)
	setDefault(&c.MaxUnauthenticated, DefaultMaxUnauthenticated)
	setDefault(&c.MaxUnauthenticatedPerAddress, DefaultMaxUnauthenticatedPerAddress)
	setDefault(&c.AuthTimeout, settings.Duration(DefaultAuthTimeout))
	setDefault(&c.MaxUnauthenticatedMessageSize, DefaultMaxUnauthenticatedMessageSize)
	setDefault(&c.MessageTimeout, settings.Duration(DefaultMessageTimeout))
	setDefault(&c.AuthFailures, DefaultAuthFailures)
	setDefault(&c.AuthFailuresPerMinute, DefaultAuthFailuresPerMinute)
	setDefault(&c.QueueSize, DefaultQueueSize)
	setDefault(&c.WriteTimeout, settings.Duration(DefaultWriteTimeout))
	setDefault(&c.PingInterval, settings.Duration(DefaultPingInterval))
	setDefault(&c.HeartbeatInterval, settings.Duration(DefaultHeartbeatInterval))
	setDefault(&c.SaveDelay, DefaultSaveDelay)
	setDefault(&c.UserRetention, settings.Duration(DefaultUserRetention))
	c.JWT = c.JWT.WithDefaults()
	return c
}

func setDefault[T int | int64 | float64 | time.Duration | settings.Duration](field *T, def T) {
	if *field == 0 {
		*field = def
	}
}

// Validate reports the first setting that cannot work. It never includes a
// token or the cookie key in its error.
func (c Config) Validate() error {
	seen := make(map[[sha256.Size]byte]string)
	for name, token := range c.userTokens() {
		if !userNamePattern.MatchString(name) {
			return fmt.Errorf("user name %q: must be 1-64 of A-Z, a-z, 0-9, _ and -", name)
		}
		if _, ok := presentedToken(token); !ok || strings.TrimSpace(token) != token {
			return fmt.Errorf("user %q: token is empty or starts or ends with whitespace", name)
		}
		h := sha256.Sum256([]byte(token))
		if other, dup := seen[h]; dup {
			return fmt.Errorf("users %q and %q share a token", min(name, other), max(name, other))
		}
		seen[h] = name
	}
	if _, err := ParseCookieKey(c.CookieKey); err != nil {
		return err
	}
	if c.JWT.Enabled() {
		if err := c.JWT.Validate(); err != nil {
			return err // names the setting or the file, never the key
		}
	}
	for _, o := range c.AllowedOrigins {
		if o == "" || strings.TrimSpace(o) != o {
			return fmt.Errorf("allowed origin %q: must be an exact, non-empty Origin value", o)
		}
	}
	if c.MaxMessageSize < 0 || c.ConnectionsPerMinute < 0 || c.MessagesPerSecond < 0 || c.MessageBurst < 0 ||
		c.MaxAuctions < 0 || c.MaxProductsPerUser < 0 || c.MaxSocketsPerUser < 0 ||
		c.MaxUnauthenticated < 0 || c.QueueSize < 0 ||
		c.MaxUnauthenticatedPerAddress < 0 || c.MaxUnauthenticatedMessageSize < 0 ||
		c.AuthFailures < 0 || c.AuthFailuresPerMinute < 0 {
		return errors.New("limits must not be negative")
	}
	if c.WriteTimeout < 0 || c.PingInterval < 0 || c.HeartbeatInterval < 0 || c.SaveDelay < 0 || c.FeedLinger < 0 ||
		c.AuthTimeout < 0 || c.MessageTimeout < 0 || c.UserRetention < 0 {
		return errors.New("durations must not be negative")
	}
	if time.Duration(c.HeartbeatInterval) > maxHeartbeatInterval {
		return fmt.Errorf("heartbeat_interval %s: must be at most %s to keep a Chrome service worker alive",
			c.HeartbeatInterval, maxHeartbeatInterval)
	}
	return nil
}

// userTokens is a copy of Users, the caller's to keep.
func (c Config) userTokens() map[string]string { return maps.Clone(c.Users) }

// ParseCookieKey decodes a cookie key (Config.CookieKey); nil without a key.
// The Caddyfile parser uses it too, so both accept the same forms. The
// error never contains the key.
func ParseCookieKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("cookie_key: must be 32 bytes written as 64 hex digits or base64")
}
