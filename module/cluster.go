package module

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/settings"
)

// clusterKey holds the process's cluster bus in states, beside the shared
// state: one connection for the life of the process, kept across reloads.
const clusterKey = "nellis-cluster"

// errClusterChanged is the answer to a reload that adds, removes or
// changes `cluster`: the connection, the node's name and its leases are
// the process's, not a config's.
var errClusterChanged = errors.New("nellis: restart to change cluster")

// parseCluster reads `cluster <url...> { <subdirective> <args...> }`, d on
// the word cluster.
func (a *App) parseCluster(d *caddyfile.Dispenser) error {
	c := &cluster.Config{Servers: d.RemainingArgs()}
	if len(c.Servers) == 0 {
		return d.Err("cluster: want at least one NATS URL, such as nats://127.0.0.1:4222")
	}
	for _, raw := range c.Servers {
		if err := cluster.CheckServer(raw); err != nil {
			return d.Err(err.Error()) // names no secret
		}
	}
	for d.NextBlock(1) {
		name := d.Val()
		args := d.RemainingArgs()
		if d.NextBlock(2) {
			return d.Errf("cluster %s: takes no block", name)
		}
		if err := setClusterOption(d, c, name, args); err != nil {
			return err
		}
	}
	if err := clusterAuthCheck(c); err != nil {
		return d.Err(err.Error())
	}
	a.Cluster = c
	return nil
}

// setClusterOption applies one line of the cluster block; d is on its
// last token.
func setClusterOption(d *caddyfile.Dispenser, c *cluster.Config, name string, args []string) error {
	one := func() (string, error) {
		if len(args) != 1 || args[0] == "" {
			return "", d.Errf("cluster %s: want exactly one argument, got %d (is its environment variable set?)", name, len(args))
		}
		return args[0], nil
	}
	duration := func(dst *settings.Duration, lo, hi time.Duration) error {
		raw, err := one()
		if err != nil {
			return err
		}
		v, err := settings.ParseDuration(raw)
		if err != nil {
			return d.Errf("cluster %s: invalid duration %q", name, raw)
		}
		if v < lo || (hi > 0 && v > hi) {
			if hi > 0 {
				return d.Errf("cluster %s: must be %v to %v, got %q", name, lo, hi, raw)
			}
			return d.Errf("cluster %s: must be at least %v, got %q", name, lo, raw)
		}
		*dst = settings.Duration(v)
		return nil
	}
	var err error
	switch name {
	case "node", "prefix":
		raw, err := one()
		if err != nil {
			return err
		}
		// A runtime placeholder is checked once resolved, at provisioning.
		if !strings.Contains(raw, "{") {
			if err := cluster.CheckName(name, raw); err != nil {
				return d.Err(err.Error())
			}
		}
		if name == "node" {
			c.Node = raw
		} else {
			c.Prefix = raw
		}
	case "creds":
		c.Creds, err = one()
	case "token":
		c.Token, err = one()
	case "tls_ca":
		c.TLSCA, err = one()
	case "user":
		if len(args) != 2 || args[0] == "" || args[1] == "" {
			return d.Errf("cluster user: want <name> <password>, got %d arguments", len(args))
		}
		c.User, c.Password = args[0], args[1]
	case "replicas":
		raw, err := one()
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > cluster.MaxReplicas {
			return d.Errf("cluster replicas: want 1 to %d, got %q", cluster.MaxReplicas, raw)
		}
		c.Replicas = n
	case "remote_users":
		raw, err := one()
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return d.Errf("cluster remote_users: want a positive count, got %q", raw)
		}
		c.RemoteUsers = n
	case "lease":
		return duration(&c.Lease, cluster.MinLease, cluster.MaxLease)
	case "history_age":
		return duration(&c.HistoryAge, cluster.MinHistoryAge, 0)
	default:
		return d.Errf("cluster: unrecognized subdirective %q", name)
	}
	return err
}

// clusterAuthCheck refuses two ways of authenticating at once.
func clusterAuthCheck(c *cluster.Config) error {
	n := 0
	for _, set := range []bool{c.Creds != "", c.Token != "", c.User != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("cluster: give at most one of creds, token and user")
	}
	return nil
}

// clusterConfig is the bus's config: the app's `cluster` with its runtime
// placeholders ({env.NATS_TOKEN}) resolved, its defaults, and the hub's
// history as the log's depth per product.
func (a *App) clusterConfig(history int) (cluster.Config, error) {
	c := *a.Cluster
	c.Servers = append([]string(nil), c.Servers...)
	repl := caddy.NewReplacer()
	for _, f := range []struct {
		name string
		v    *string
	}{{"node", &c.Node}, {"creds", &c.Creds}, {"token", &c.Token}, {"user", &c.User}, {"user", &c.Password}, {"tls_ca", &c.TLSCA}, {"prefix", &c.Prefix}} {
		if *f.v == "" {
			continue
		}
		if *f.v = repl.ReplaceKnown(*f.v, ""); *f.v == "" {
			return cluster.Config{}, fmt.Errorf("nellis: cluster %s is empty (is its environment variable set?)", f.name)
		}
	}
	c.History = history
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return cluster.Config{}, fmt.Errorf("nellis: %w", err)
	}
	return c, nil
}

// validateCluster checks, without I/O, what Validate can: the cluster's
// own settings and that cookies will travel sealed.
func (a *App) validateCluster() error {
	if a.Cluster == nil {
		return nil
	}
	var errs []error
	if a.CookieKey == "" {
		errs = append(errs, errors.New("cluster needs cookie_key: cookies travel between nodes sealed"))
	}
	if _, err := a.clusterConfig(a.hubConfig().History); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// clusterBus is the process's bus in states. Connected by the first
// Start, closed when the last config lets go of it.
type clusterBus struct {
	bus       *cluster.JetStream
	mu        sync.Mutex
	connected bool
}

// Destruct closes the connection; leases run out on their own.
func (c *clusterBus) Destruct() error { return c.bus.Close() }

// connect dials once; a later Start (a reload) finds it connected.
func (c *clusterBus) connect(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connected {
		return nil
	}
	if err := c.bus.Connect(ctx); err != nil {
		return err
	}
	c.connected = true
	return nil
}

// runningCluster returns the bus a running config holds, if any.
func runningCluster() *clusterBus {
	var found *clusterBus
	states.Range(func(key, value any) bool {
		if key == clusterKey {
			found = value.(*clusterBus)
			return false
		}
		return true
	})
	return found
}

// provisionCluster takes hold of the process's bus, made without I/O on
// the first load. A reload may not add, remove or change `cluster`: the
// running config still holds the state while the next one provisions.
func (a *App) provisionCluster() error {
	running := runningCluster()
	_, gateway := states.References(stateKey)
	if a.Cluster == nil {
		if running != nil {
			return errClusterChanged
		}
		return nil
	}
	cfg, err := a.clusterConfig(a.hubCfg.History)
	if err != nil {
		return err
	}
	switch {
	case running != nil && !reflect.DeepEqual(running.bus.Config(), cfg):
		return errClusterChanged
	case running == nil && gateway:
		return errClusterChanged
	}
	v, _, err := states.LoadOrNew(clusterKey, func() (caddy.Destructor, error) {
		bus, err := cluster.New(cfg)
		if err != nil {
			return nil, err
		}
		return &clusterBus{bus: bus}, nil
	})
	if err != nil {
		return err
	}
	a.clusterHold = v.(*clusterBus)
	return nil
}

// startCluster connects on the first start.
func (a *App) startCluster(ctx context.Context) error {
	if a.clusterHold == nil {
		return nil
	}
	if err := a.clusterHold.connect(ctx); err != nil {
		return fmt.Errorf("nellis: %w", err)
	}
	a.shared.hub.Follow()
	return nil
}

// sharedBus is the bus the hub is built on: nil without `cluster`.
func (a *App) sharedBus() cluster.Bus {
	if a.clusterHold == nil {
		return nil
	}
	return a.clusterHold.bus
}

// cleanupCluster lets go of the bus; the last config to do so closes it.
func (a *App) cleanupCluster() error {
	if a.clusterHold == nil {
		return nil
	}
	a.clusterHold = nil
	_, err := states.Delete(clusterKey)
	return err
}
