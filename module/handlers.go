package module

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(new(WSHandler))
	caddy.RegisterModule(new(APIHandler))
	caddy.RegisterModule(new(SSEMetricsHandler))
	httpcaddyfile.RegisterHandlerDirective("nellis_ws", parseWSHandler)
	httpcaddyfile.RegisterHandlerDirective("nellis_api", parseAPIHandler)
	httpcaddyfile.RegisterHandlerDirective("nellis_sse_metrics", parseSSEMetricsHandler)
	// They answer requests, so they sit with the other responding handlers,
	// ahead of `respond` so a catch-all response cannot shadow them. Each
	// lands just before `respond`, so they keep this order among themselves.
	httpcaddyfile.RegisterDirectiveOrder("nellis_ws", httpcaddyfile.Before, "respond")
	httpcaddyfile.RegisterDirectiveOrder("nellis_api", httpcaddyfile.Before, "respond")
	httpcaddyfile.RegisterDirectiveOrder("nellis_sse_metrics", httpcaddyfile.Before, "respond")
}

// WSHandler is the extension's WebSocket endpoint (`nellis_ws`). It hands
// each upgrade to the app's connection registry, which outlives the
// handler across config reloads.
type WSHandler struct {
	// Origins allowed to open a socket, matched exactly, e.g.
	// chrome-extension://<id>. A request without an Origin header (not a
	// browser) is allowed and still needs a token. Default: none, so
	// browsers are refused until origins are listed.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	app *App
}

// CaddyModule returns the Caddy module information.
func (*WSHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.nellis_ws",
		New: func() caddy.Module { return new(WSHandler) },
	}
}

// Provision finds the app that owns the connections.
func (h *WSHandler) Provision(ctx caddy.Context) error {
	app, err := nellisApp(ctx)
	if err != nil {
		return err
	}
	h.app = app
	app.addOrigins(h.AllowedOrigins)
	return nil
}

// Validate checks the origins.
func (h *WSHandler) Validate() error { return validateOrigins(h.AllowedOrigins) }

// ServeHTTP upgrades the request; it never calls next.
func (h *WSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.app.shared.serveWS(w, r, h.AllowedOrigins)
	return nil
}

// APIHandler serves the REST calls the extension makes (`nellis_api`).
type APIHandler struct {
	// Origins that may call the API from a browser (CORS), matched
	// exactly. Default: none.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	app *App
}

// CaddyModule returns the Caddy module information.
func (*APIHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.nellis_api",
		New: func() caddy.Module { return new(APIHandler) },
	}
}

// Provision finds the app.
func (h *APIHandler) Provision(ctx caddy.Context) error {
	app, err := nellisApp(ctx)
	if err != nil {
		return err
	}
	h.app = app
	app.addOrigins(h.AllowedOrigins)
	return nil
}

// Validate checks the origins.
func (h *APIHandler) Validate() error { return validateOrigins(h.AllowedOrigins) }

// ServeHTTP answers the request; it never calls next.
func (h *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.app.shared.serveAPI(w, r, h.AllowedOrigins)
	return nil
}

// SSEMetricsHandler serves the predecessor's `/metrics/sse` JSON
// (`nellis_sse_metrics`).
type SSEMetricsHandler struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (*SSEMetricsHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.nellis_sse_metrics",
		New: func() caddy.Module { return new(SSEMetricsHandler) },
	}
}

// Provision finds the app.
func (h *SSEMetricsHandler) Provision(ctx caddy.Context) error {
	app, err := nellisApp(ctx)
	h.app = app
	return err
}

// ServeHTTP writes the JSON; it never calls next.
func (h *SSEMetricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", r.Method))
	}
	h.app.shared.serveSSEMetrics(w, r)
	return nil
}

// nellisApp loads the `nellis` app the handlers hand over to.
func nellisApp(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("nellis")
	if err != nil {
		return nil, fmt.Errorf("loading the nellis app: %w", err)
	}
	return v.(*App), nil
}

// validateOrigins accepts exact origins: scheme://host[:port], nothing else.
func validateOrigins(origins []string) error {
	for _, o := range origins {
		if err := checkOrigin(o); err != nil {
			return err
		}
	}
	return nil
}

func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("allowed_origins: %q is not an origin (want scheme://host, e.g. chrome-extension://<id>)", o)
	}
	return nil
}

// parseWSHandler reads `nellis_ws`.
//
// Syntax:
//
//	nellis_ws [<matcher>] {
//		allowed_origins <origin...>
//	}
func parseWSHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	if err := requireApp(h); err != nil {
		return nil, err
	}
	handler := new(WSHandler)
	origins, err := parseOriginsBlock(h.Dispenser)
	handler.AllowedOrigins = origins
	return handler, err
}

// parseAPIHandler reads `nellis_api`.
//
// Syntax:
//
//	nellis_api [<matcher>] {
//		allowed_origins <origin...>
//	}
func parseAPIHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	if err := requireApp(h); err != nil {
		return nil, err
	}
	handler := new(APIHandler)
	origins, err := parseOriginsBlock(h.Dispenser)
	handler.AllowedOrigins = origins
	return handler, err
}

// parseSSEMetricsHandler reads `nellis_sse_metrics`.
//
// Syntax:
//
//	nellis_sse_metrics [<matcher>]
func parseSSEMetricsHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // the directive's name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	if h.NextBlock(0) {
		return nil, h.Errf("nellis_sse_metrics: takes no block, got %q", h.Val())
	}
	return new(SSEMetricsHandler), nil
}

// requireApp reports, at the directive's line, a handler used without the
// global `nellis` option, which holds the users every endpoint needs.
func requireApp(h httpcaddyfile.Helper) error {
	defer h.Reset() // leave the tokens for the directive's own parser
	h.Next()        // the directive's name, for the error's position
	if h.Option("nellis") == nil {
		return h.Errf("%s needs the global nellis option with auth_token or user lines", h.Val())
	}
	return nil
}

// parseOriginsBlock reads a handler whose only subdirective is
// allowed_origins, which may repeat.
func parseOriginsBlock(d *caddyfile.Dispenser) ([]string, error) {
	d.Next() // the directive's name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	var origins []string
	for d.NextBlock(0) {
		switch d.Val() {
		case "allowed_origins":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			for _, o := range args {
				if err := checkOrigin(o); err != nil {
					return nil, d.Err(err.Error())
				}
			}
			origins = append(origins, args...)
		default:
			return nil, d.Errf("unrecognized subdirective %q", d.Val())
		}
	}
	return origins, nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*WSHandler)(nil)
	_ caddy.Validator             = (*WSHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*WSHandler)(nil)
	_ caddy.Provisioner           = (*APIHandler)(nil)
	_ caddy.Validator             = (*APIHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*APIHandler)(nil)
	_ caddy.Provisioner           = (*SSEMetricsHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*SSEMetricsHandler)(nil)
)
