package wsrelay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/users"
)

// maxAPIBody bounds a REST request body.
const maxAPIBody = 64 << 10

// apiError is every REST error body.
type apiError struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
}

// APIHandler serves the REST routes the extension calls (docs/protocol.md, REST API)
// and the health checks:
//
//	GET  /api/status               the "test connection" button
//	POST /api/auth                 {"cookies":"a=b; c=d"}, the user's Nellis cookies
//	GET  /api/auctions             {"success":true,"auctions":[…]}
//	PUT  /api/auctions/{id}/config {"config":{…}}
//	POST /api/auctions/{id}/bid    {"amount":n}
//	GET  /health, /health/live, /health/ready
//
// /api routes need the token as "Authorization: <token>" or "Bearer <token>".
// CORS is answered for the allowed origins only; others get 403.
func (r *Relay) APIHandler() http.Handler {
	return http.HandlerFunc(r.serveAPI)
}

func (r *Relay) serveAPI(w http.ResponseWriter, req *http.Request) {
	cfg := r.config()
	if origin := req.Header.Get("Origin"); origin != "" {
		if !originAllowed(cfg, origin) {
			writeJSON(w, http.StatusForbidden, apiError{Error: "origin not allowed"})
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if req.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	path := strings.TrimSuffix(req.URL.Path, "/")
	switch path {
	case "/health":
		r.route(w, req, http.MethodGet, r.apiHealth)
		return
	case "/health/live":
		r.route(w, req, http.MethodGet, func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})
		return
	case "/health/ready":
		r.route(w, req, http.MethodGet, r.apiReady)
		return
	}
	rest, ok := strings.CutPrefix(path, "/api/")
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Error: "not found"})
		return
	}
	u, spent := r.apiUser(req)
	if spent {
		w.Header().Set("Retry-After", strconv.Itoa(int(r.authRetryAfter()/time.Second)))
		writeJSON(w, http.StatusTooManyRequests, apiError{Error: errAuthBudgetSpent})
		return
	}
	if u == nil {
		writeJSON(w, http.StatusUnauthorized, apiError{Error: errNotAuthed})
		return
	}
	withUser := func(h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) { h(w, req, u) }
	}
	switch rest {
	case "status":
		r.route(w, req, http.MethodGet, withUser(r.apiStatus))
		return
	case "auth":
		r.route(w, req, http.MethodPost, withUser(r.apiAuth))
		return
	case "auctions":
		r.route(w, req, http.MethodGet, withUser(r.apiAuctions))
		return
	}
	if id, action, ok := strings.Cut(strings.TrimPrefix(rest, "auctions/"), "/"); ok && strings.HasPrefix(rest, "auctions/") {
		if !users.ValidAuctionID(id) {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "auction id must be 1-100 characters of A-Z, a-z, 0-9, _ or -"})
			return
		}
		switch action {
		case "config":
			r.route(w, req, http.MethodPut, withUser(func(w http.ResponseWriter, req *http.Request, u *user) { r.apiConfig(w, req, u, id) }))
			return
		case "bid":
			r.route(w, req, http.MethodPost, withUser(func(w http.ResponseWriter, req *http.Request, u *user) { r.apiBid(w, req, u, id) }))
			return
		}
	}
	writeJSON(w, http.StatusNotFound, apiError{Error: "not found"})
}

// route runs h for the one method the route serves, HEAD included with GET.
func (r *Relay) route(w http.ResponseWriter, req *http.Request, method string, h http.HandlerFunc) {
	if req.Method != method && !(method == http.MethodGet && req.Method == http.MethodHead) {
		w.Header().Set("Allow", method+", OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: fmt.Sprintf("method %s not allowed; use %s", req.Method, method)})
		return
	}
	h(w, req)
}

// apiUser authenticates the request's token, raw or as a Bearer token,
// as the socket's authenticate does: a wrong token counts against the
// client address's failed-authentication budget, which the address's
// sockets share, and once that is spent (spent) no token is checked.
func (r *Relay) apiUser(req *http.Request) (u *user, spent bool) {
	raw := strings.TrimSpace(req.Header.Get("Authorization"))
	if scheme, rest, ok := strings.Cut(raw, " "); ok && strings.EqualFold(scheme, "Bearer") {
		raw = rest
	}
	token, ok := presentedToken(raw)
	if !ok {
		return nil, false // nothing guessed
	}
	addr := addressKey(r.clientIP(req))
	if !r.authAllowed(addr) {
		return nil, true
	}
	u, _, configured, refusal := r.signIn(token)
	if u == nil && configured && refusal != errServerMisconfig { // a guess, not a failed storage
		r.authFailed(addr)
	}
	return u, false
}

// apiHealth says the relay is up and nothing more: it answers anyone, and
// how many users, sockets and auctions the gateway has is for its
// operator (the admin API's /nellis/feeds), not for the internet.
func (r *Relay) apiHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (r *Relay) apiReady(w http.ResponseWriter, _ *http.Request) {
	r.mu.RLock()
	closing := r.closing
	r.mu.RUnlock()
	if closing {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (r *Relay) apiStatus(w http.ResponseWriter, _ *http.Request, u *user) {
	r.mu.RLock()
	monitoredCount, conns, hasCookies := len(u.auctions), len(u.conns), r.cookiesOf(u) != ""
	r.mu.RUnlock()
	writeJSON(w, http.StatusOK, struct {
		Success           bool    `json:"success"`
		Status            string  `json:"status"`
		User              string  `json:"user"`
		MonitoredAuctions int     `json:"monitoredAuctions"`
		Connections       int     `json:"connections"`
		CookiesSynced     bool    `json:"cookiesSynced"`
		BiddingEnabled    bool    `json:"biddingEnabled"`
		Uptime            float64 `json:"uptime"`
	}{true, "running", u.name, monitoredCount, conns, hasCookies, r.bidderNow() != nil, r.now().Sub(r.started).Seconds()})
}

// apiAuth stores the user's Nellis cookies. An empty value (the extension
// syncs "" when the user is logged out) is refused and keeps the old ones.
func (r *Relay) apiAuth(w http.ResponseWriter, req *http.Request, u *user) {
	var body struct {
		Cookies *string `json:"cookies"`
	}
	if !decodeBody(w, req, &body) {
		return
	}
	if body.Cookies == nil || strings.TrimSpace(*body.Cookies) == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "cookies are empty (logged out of nellisauction.com?); the cookies synced before are kept"})
		return
	}
	cookies := strings.TrimSpace(*body.Cookies)
	if err := nellis.CheckCookies(cookies); err != nil {
		// Stored, they would fail every snapshot and bid made with them.
		// The error names the problem, never the value.
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error() + "; the cookies synced before are kept"})
		return
	}
	r.mu.Lock()
	r.setCookies(u, cookies)
	r.mu.Unlock()
	r.saver.MarkDirty(u.name)
	// New cookies may revive auto-bidding stopped by refused ones, and may
	// change whose cookies a product's snapshots use.
	r.refreshAutoBid(r.UserProducts(u.name)...)
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": "Cookies updated"})
}

func (r *Relay) apiAuctions(w http.ResponseWriter, _ *http.Request, u *user) {
	writeJSON(w, http.StatusOK, struct {
		Success  bool            `json:"success"`
		Auctions json.RawMessage `json:"auctions"`
	}{true, r.auctionList(u)})
}

func (r *Relay) apiConfig(w http.ResponseWriter, req *http.Request, u *user, id string) {
	var body struct {
		Config json.RawMessage `json:"config"`
	}
	if !decodeBody(w, req, &body) {
		return
	}
	patch, err := decodeConfigPatch(body.Config)
	if err == nil && patch == nil {
		err = errors.New("config is required")
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	cfg, err := r.updateAuctionConfig(u, id, patch)
	if err != nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
		return
	}
	r.pushState(u, id)
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "config": cfg})
}

func (r *Relay) apiBid(w http.ResponseWriter, req *http.Request, u *user, id string) {
	var body struct {
		Amount json.RawMessage `json:"amount"`
	}
	if !decodeBody(w, req, &body) {
		return
	}
	amount, err := decodeNumber(body.Amount)
	if err != nil || amount <= 0 || amount > maxBidLimit {
		writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("amount must be a number in (0, %d]", maxBidLimit)})
		return
	}
	res := r.placeBid(u, id, amount)
	status := http.StatusOK
	switch {
	case res.ErrorType == "BIDDING_DISABLED":
		status = http.StatusNotImplemented
	case res.ErrorType == "NOT_FOUND":
		status = http.StatusNotFound
	case res.ErrorType == bidFailed: // Nellis could not be asked
		status = http.StatusBadGateway
	case !res.Success: // Nellis said no (too low, ended, …)
		status = http.StatusBadRequest
	}
	writeJSON(w, status, struct {
		Success   bool            `json:"success"`
		Data      json.RawMessage `json:"data,omitempty"`
		Error     string          `json:"error,omitempty"`
		ErrorType string          `json:"errorType,omitempty"`
		Retryable bool            `json:"retryable"`
	}{res.Success, res.Data, res.Error, res.ErrorType, res.Retryable})
}

// decodeBody reads a bounded JSON body; on failure it has answered 400/413.
func decodeBody(w http.ResponseWriter, req *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxAPIBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("body larger than %d bytes", maxAPIBody)})
		return false
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{Error: "cannot read body"})
		return false
	}
	if err := json.Unmarshal(data, v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "body must be a JSON object"})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
