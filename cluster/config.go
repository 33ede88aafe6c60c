package cluster

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

// Config is the `cluster` block of the global `nellis` option: which NATS
// servers to join and how this node takes part. Reading it does no
// network I/O: New and Validate only check it; Connect dials.
type Config struct {
	// Servers are the NATS URLs (nats://, tls://, ws:// or wss://) of one
	// NATS cluster, tried in turn. The `cluster` line's arguments.
	// Required.
	Servers []string `json:"servers,omitempty"`

	// Node names this gateway among the others: unique per cluster, it is
	// what leases and presence record. Default: the host name.
	Node string `json:"node,omitempty"`

	// Creds is a NATS credentials file (a user JWT and its NKey seed).
	// At most one of creds, token and user. Default: none.
	Creds string `json:"creds,omitempty"`

	// Token authenticates with a NATS token; secret. Default: none.
	Token string `json:"token,omitempty"`

	// User and Password authenticate with a NATS user; the password is
	// secret. Default: none.
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`

	// TLSCA is a PEM file of the authorities that sign the NATS servers'
	// certificates, for servers not signed by the system's.
	// Default: the system's authorities.
	TLSCA string `json:"tls_ca,omitempty"`

	// Prefix starts every stream, bucket and subject name, so several
	// deployments can share one NATS account. Letters, digits, - and _.
	// Default: nellis.
	Prefix string `json:"prefix,omitempty"`

	// Replicas is how many NATS servers keep each stream and bucket,
	// 1 to 5. 1 suits a single NATS server (which refuses more); a NATS
	// cluster of three should use 3 so that a broker failover loses no
	// acknowledged lease or change. Default: 1.
	Replicas int `json:"replicas,omitempty"`

	// Lease is how long an ownership lease lasts without renewal, 1s to
	// 30s. Its holder renews it every third of it and stops acting on the
	// product before it can have run out; another node takes over after
	// a full lease without renewal. Default: 3s.
	Lease settings.Duration `json:"lease,omitempty"`

	// HistoryAge is how long a product's log outlives its last change,
	// at least 1m. Default: 24h.
	HistoryAge settings.Duration `json:"history_age,omitempty"`

	// RemoteUsers bounds the users this node holds only to bid for them:
	// users of signed tokens who signed in on other nodes, not here, with
	// an auction on a lot this node owns. Beyond it the user is not
	// loaded (logged), and their lot gets no auto-bid until a node under
	// its bound owns it. Default: 10000.
	RemoteUsers int `json:"remote_users,omitempty"`

	// History is how many changes the log keeps per product: the hub's
	// `history`, set by the app. Default: 64.
	History int `json:"-"`
}

// The limits of Config.
const (
	DefaultPrefix      = "nellis"
	DefaultReplicas    = 1
	DefaultLease       = 3 * time.Second
	DefaultHistoryAge  = 24 * time.Hour
	DefaultHistory     = 64
	DefaultRemoteUsers = 10000

	MinLease      = time.Second
	MaxLease      = 30 * time.Second
	MinHistoryAge = time.Minute
	MaxReplicas   = 5 // JetStream's own limit
)

// WithDefaults returns c with every unset field at its default. The node
// name defaults to the host name (a local call, no network).
func (c Config) WithDefaults() Config {
	if c.Node == "" {
		if h, err := os.Hostname(); err == nil {
			// A host name may hold dots, which a subject token may not.
			c.Node = nodeUnsafe.ReplaceAllString(h, "-")
		}
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.Lease == 0 {
		c.Lease = settings.Duration(DefaultLease)
	}
	if c.HistoryAge == 0 {
		c.HistoryAge = settings.Duration(DefaultHistoryAge)
	}
	if c.History == 0 {
		c.History = DefaultHistory
	}
	if c.RemoteUsers == 0 {
		c.RemoteUsers = DefaultRemoteUsers
	}
	return c
}

// namePattern is what a prefix or a node may be: one token of a subject
// and a KV key, and a valid part of a stream name.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// nodeUnsafe is what a host name may hold that a node name may not.
var nodeUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// CheckName checks a node name or a prefix.
func CheckName(what, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("cluster: %s %q: want 1 to 64 letters, digits, - or _", what, name)
	}
	return nil
}

// Validate checks a config that WithDefaults completed. Its errors name
// the setting and never a secret.
func (c Config) Validate() error {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("cluster: no NATS server: give at least one URL, such as nats://127.0.0.1:4222"))
	}
	for _, raw := range c.Servers {
		if err := CheckServer(raw); err != nil {
			errs = append(errs, err)
		}
	}
	if err := CheckName("node", c.Node); err != nil {
		errs = append(errs, err)
	}
	auth := 0
	for _, set := range []bool{c.Creds != "", c.Token != "", c.User != "" || c.Password != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		errs = append(errs, errors.New("cluster: give at most one of creds, token and user"))
	}
	if (c.User == "") != (c.Password == "") {
		errs = append(errs, errors.New("cluster: user needs both a name and a password"))
	}
	if err := CheckName("prefix", c.Prefix); err != nil {
		errs = append(errs, err)
	}
	if c.Replicas < 1 || c.Replicas > MaxReplicas {
		errs = append(errs, fmt.Errorf("cluster: replicas must be 1 to %d, got %d", MaxReplicas, c.Replicas))
	}
	if l := time.Duration(c.Lease); l < MinLease || l > MaxLease {
		errs = append(errs, fmt.Errorf("cluster: lease must be %v to %v, got %v", MinLease, MaxLease, l))
	}
	if a := time.Duration(c.HistoryAge); a < MinHistoryAge {
		errs = append(errs, fmt.Errorf("cluster: history_age must be at least %v, got %v", MinHistoryAge, a))
	}
	if c.History < 1 {
		errs = append(errs, fmt.Errorf("cluster: history must be at least 1, got %d", c.History))
	}
	if c.RemoteUsers < 1 {
		errs = append(errs, fmt.Errorf("cluster: remote_users must be at least 1, got %d", c.RemoteUsers))
	}
	return errors.Join(errs...)
}

// CheckServer accepts a NATS URL without credentials: those belong in
// creds, token or user, which stay out of logs.
func CheckServer(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url's error quotes the URL, which may hold a password.
		return errors.New("cluster: a server is not a valid URL")
	}
	if u.User != nil {
		// Not even the host: the user part may be a token.
		return errors.New("cluster: a server URL holds credentials; use creds, token or user")
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("cluster: server %q: scheme must be nats, tls, ws or wss", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("cluster: server %q: no host", raw)
	}
	return nil
}

// renewEvery is how often a held lease is renewed.
func (c Config) renewEvery() time.Duration { return time.Duration(c.Lease) / 3 }

// safetyMargin is how long before its lease could run out, by the local
// clock, a holder stops acting: it covers the clocks of two machines
// running at slightly different rates and the time a last act takes.
func (c Config) safetyMargin() time.Duration { return time.Duration(c.Lease) / 5 }
