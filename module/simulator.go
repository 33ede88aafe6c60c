package module

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/nellis-edge/gateway/nellissim"
)

func init() {
	caddy.RegisterModule(new(SimHandler))
	httpcaddyfile.RegisterHandlerDirective("nellis_sim", parseSimHandler)
	httpcaddyfile.RegisterDirectiveOrder("nellis_sim", httpcaddyfile.Before, "respond")
}

// simulators keeps each running simulator by its settings, so a config
// reload that keeps a `nellis_sim` block unchanged keeps its auctions,
// streams and bids going.
var simulators = caddy.NewUsagePool()

// SimHandler serves a simulated Nellis (`nellis_sim`): SSE streams,
// product snapshots, bids, and a control API under /_sim/ for tests and
// demos. It stands in for nellisauction.com where that cannot be reached.
type SimHandler struct {
	// Seed makes the simulated catalogue reproducible. Default: 0.
	Seed int64 `json:"seed,omitempty"`
	// Number of lots. Default: 8.
	Auctions int `json:"auctions,omitempty"`
	// Mean time between rival bids across all lots; unset means no
	// automatic bids. Default: none.
	BidInterval caddy.Duration `json:"bid_interval,omitempty"`
	// When the last lots close, from start. Default: 30m.
	AuctionLength caddy.Duration `json:"auction_length,omitempty"`
	// Time between SSE pings. Default: 1s.
	PingInterval caddy.Duration `json:"ping_interval,omitempty"`
	// Soft-close extension in seconds. Default: 30.
	ExtensionInterval int `json:"extension_interval,omitempty"`
	// Which snapshot routes answer: json, data or html. Default: json.
	SnapshotFormat string `json:"snapshot_format,omitempty"`

	key string
	sim *nellissim.Simulator
}

// CaddyModule returns the Caddy module information.
func (*SimHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.nellis_sim",
		New: func() caddy.Module { return new(SimHandler) },
	}
}

func (h *SimHandler) config() nellissim.Config {
	return nellissim.Config{
		Seed:              h.Seed,
		Auctions:          h.Auctions,
		BidInterval:       time.Duration(h.BidInterval),
		AuctionLength:     time.Duration(h.AuctionLength),
		PingInterval:      time.Duration(h.PingInterval),
		ExtensionInterval: h.ExtensionInterval,
		SnapshotFormat:    h.SnapshotFormat,
	}
}

// Validate rejects settings the simulator would have to correct.
func (h *SimHandler) Validate() error {
	if err := h.config().Validate(); err != nil {
		return fmt.Errorf("nellis_sim: %w", err)
	}
	return nil
}

// Provision finds or starts the simulator for these settings.
func (h *SimHandler) Provision(ctx caddy.Context) error {
	key, err := json.Marshal(h)
	if err != nil {
		return err
	}
	h.key = string(key)
	v, _, err := simulators.LoadOrNew(h.key, func() (caddy.Destructor, error) {
		sim := nellissim.New(h.config())
		sim.Start()
		return pooledSim{sim}, nil
	})
	if err != nil {
		return err
	}
	h.sim = v.(pooledSim).Simulator
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		srv.RegisterOnShutdown(closeWhenExiting(h.sim))
	}
	return nil
}

// closeWhenExiting is a server's shutdown hook that ends sim when the
// process exits. The streams it serves are responses that never finish on
// their own, and an exiting Caddy waits for every response, those of
// servers a reload replaced included, before it cleans up modules: only
// then would the pool close sim. A reload also shuts servers down, but the
// next config keeps sim and the streams it serves, so they go on.
func closeWhenExiting(sim *nellissim.Simulator) func() {
	return func() {
		if caddy.Exiting() {
			sim.Close()
		}
	}
}

// Cleanup releases this config's hold on the simulator.
func (h *SimHandler) Cleanup() error {
	if h.key == "" {
		return nil
	}
	_, err := simulators.Delete(h.key)
	return err
}

// ServeHTTP answers as Nellis would; it never calls next.
func (h *SimHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.sim.ServeHTTP(w, r)
	return nil
}

// pooledSim lets the pool stop a simulator when no config uses it.
type pooledSim struct{ *nellissim.Simulator }

func (p pooledSim) Destruct() error {
	p.Close()
	return nil
}

// parseSimHandler reads `nellis_sim`.
//
// Syntax:
//
//	nellis_sim [<matcher>] {
//		seed               <n>
//		auctions           <n>
//		bid_interval       <duration>
//		auction_length     <duration>
//		ping_interval      <duration>
//		extension_interval <seconds>
//		snapshot_format    json|data|html
//	}
func parseSimHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	sim := new(SimHandler)
	h.Next() // the directive's name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	seen := make(map[string]bool)
	for h.NextBlock(0) {
		name := h.Val()
		if seen[name] {
			return nil, h.Errf("%s: given twice", name)
		}
		seen[name] = true
		if !h.NextArg() {
			return nil, h.ArgErr()
		}
		raw := h.Val()
		if h.NextArg() {
			return nil, h.Errf("%s: want exactly one argument", name)
		}
		var err error
		switch name {
		case "seed":
			sim.Seed, err = strconv.ParseInt(raw, 10, 64)
		case "auctions":
			sim.Auctions, err = positiveInt(raw)
		case "extension_interval":
			sim.ExtensionInterval, err = positiveInt(raw)
		case "bid_interval":
			err = positiveDuration(raw, &sim.BidInterval)
		case "auction_length":
			err = positiveDuration(raw, &sim.AuctionLength)
		case "ping_interval":
			err = positiveDuration(raw, &sim.PingInterval)
		case "snapshot_format":
			switch raw {
			case nellissim.SnapshotJSON, nellissim.SnapshotData, nellissim.SnapshotHTML:
				sim.SnapshotFormat = raw
			default:
				err = fmt.Errorf("want json, data or html, got %q", raw)
			}
		default:
			return nil, h.Errf("unrecognized subdirective %q", name)
		}
		if err != nil {
			return nil, h.Errf("%s: %v", name, err)
		}
	}
	return sim, nil
}

func positiveInt(raw string) (int, error) {
	n, err := strconv.Atoi(raw)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive whole number, got %q", raw)
	}
	return n, nil
}

func positiveDuration(raw string, dst *caddy.Duration) error {
	d, err := caddy.ParseDuration(raw)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a positive duration, got %q", raw)
	}
	*dst = caddy.Duration(d)
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*SimHandler)(nil)
	_ caddy.Validator             = (*SimHandler)(nil)
	_ caddy.CleanerUpper          = (*SimHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*SimHandler)(nil)
)
