package module

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/caddyserver/caddy/v2"
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

// endpoint is what `nellis_ws` and `nellis_api` share: the browser
// origins they accept and the app they hand requests to.
type endpoint struct {
	// Origins allowed to call the endpoint from a browser, matched
	// exactly, e.g. chrome-extension://<id>. Any other browser origin gets
	// 403 (before the upgrade, for sockets). A request without an Origin
	// header (not a browser) is let through and still needs a token.
	// Default: none, so browsers are refused until origins are listed.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	app *App
}

// Provision finds the app and tells it the origins this endpoint allows.
func (e *endpoint) Provision(ctx caddy.Context) error {
	app, err := nellisApp(ctx)
	if err != nil {
		return err
	}
	e.app = app
	app.addOrigins(e.AllowedOrigins)
	return nil
}

// Validate checks the origins.
func (e *endpoint) Validate() error { return validateOrigins(e.AllowedOrigins) }

// WSHandler is the extension's WebSocket endpoint (`nellis_ws`). It hands
// each upgrade to the app's connection registry, which outlives the
// handler across config reloads.
type WSHandler struct {
	endpoint
}

// CaddyModule returns the Caddy module information.
func (*WSHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.nellis_ws",
		New: func() caddy.Module { return new(WSHandler) },
	}
}

// ServeHTTP upgrades the request; it never calls next.
func (h *WSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.app.shared.serveWS(w, r, h.AllowedOrigins)
	return nil
}

// APIHandler serves the REST calls the extension makes and health
// (`nellis_api`).
type APIHandler struct {
	endpoint
}

// CaddyModule returns the Caddy module information.
func (*APIHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.nellis_api",
		New: func() caddy.Module { return new(APIHandler) },
	}
}

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
	handler := new(WSHandler)
	return handler, handler.parse(h)
}

// parseAPIHandler reads `nellis_api`.
//
// Syntax:
//
//	nellis_api [<matcher>] {
//		allowed_origins <origin...>
//	}
func parseAPIHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(APIHandler)
	return handler, handler.parse(h)
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

// parse reads an endpoint directive, whose only subdirective is
// allowed_origins, which may repeat.
func (e *endpoint) parse(h httpcaddyfile.Helper) error {
	if err := requireApp(h); err != nil {
		return err
	}
	h.Next() // the directive's name
	if h.NextArg() {
		return h.ArgErr()
	}
	for h.NextBlock(0) {
		switch h.Val() {
		case "allowed_origins":
			args := h.RemainingArgs()
			if len(args) == 0 {
				return h.ArgErr()
			}
			for _, o := range args {
				if err := checkOrigin(o); err != nil {
					return h.Err(err.Error())
				}
			}
			e.AllowedOrigins = append(e.AllowedOrigins, args...)
		default:
			return h.Errf("unrecognized subdirective %q", h.Val())
		}
	}
	return nil
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
