package module

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/nellis-edge/gateway/statusview"
	"github.com/nellis-edge/gateway/wsrelay"
)

func init() {
	caddy.RegisterModule(adminNellis{})
}

// adminNellis serves the gateway's status on Caddy's admin API:
//
//	GET /nellis/feeds          every feed and the totals (statusview.Report)
//	GET /nellis/health/live    200 while the process runs
//	GET /nellis/health/ready   200 once the nellis app has started, is not
//	                           cut off from its cluster (standalone) and no
//	                           more than half the feeds are stale, else 503
//
// Caddy mounts every admin.api module on every config, so the routes exist
// even when a config has no nellis app; they then answer that it is not
// running. They read the process-wide state at each request rather than
// holding it, so a reload never leaves them looking at an old config.
type adminNellis struct{}

// CaddyModule returns the Caddy module information.
func (adminNellis) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.nellis",
		New: func() caddy.Module { return new(adminNellis) },
	}
}

// Routes returns the admin API's /nellis/ routes.
func (a adminNellis) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/nellis/feeds", Handler: caddy.AdminHandlerFunc(a.handleFeeds)},
		{Pattern: "/nellis/health/live", Handler: caddy.AdminHandlerFunc(a.handleLive)},
		{Pattern: "/nellis/health/ready", Handler: caddy.AdminHandlerFunc(a.handleReady)},
	}
}

var errNotRunning = errors.New("nellis app not running")

func (adminNellis) handleFeeds(w http.ResponseWriter, r *http.Request) error {
	if err := getOnly(w, r); err != nil {
		return err
	}
	s := runningShared()
	if s == nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errNotRunning}
	}
	writeAdminJSON(w, r, http.StatusOK, s.statusReport())
	return nil
}

func (adminNellis) handleLive(w http.ResponseWriter, r *http.Request) error {
	if err := getOnly(w, r); err != nil {
		return err
	}
	writeAdminJSON(w, r, http.StatusOK, map[string]bool{"live": true})
	return nil
}

// handleReady answers 503 itself rather than returning an error: a load
// balancer polls it, and Caddy logs every returned error.
func (adminNellis) handleReady(w http.ResponseWriter, r *http.Request) error {
	if err := getOnly(w, r); err != nil {
		return err
	}
	v := statusview.Readiness{Reason: errNotRunning.Error()}
	if s := runningShared(); s != nil {
		v = statusview.Ready(s.statusReport(), statusview.DefaultMaxStaleShare)
	}
	status := http.StatusOK
	if !v.Ready {
		status = http.StatusServiceUnavailable
	}
	writeAdminJSON(w, r, status, v)
	return nil
}

// runningShared returns the process's gateway state without taking a
// reference to it (Range leaves the usage count alone), or nil when no
// config runs the nellis app.
func runningShared() *shared {
	var s *shared
	states.Range(func(key, value any) bool {
		if key == stateKey {
			s, _ = value.(*shared)
			return false
		}
		return true
	})
	return s
}

// statusReport is the gateway's status now.
func (s *shared) statusReport() statusview.Report {
	var stats *wsrelay.Stats
	if s.started.Load() {
		st := s.relay.Stats()
		stats = &st
	}
	r := statusview.NewReport(time.Now(), s.hub.Status(), stats, statusview.Latency{
		Delivery:   s.metrics.DeliveryLatency(),
		Processing: s.metrics.RecentProcessing(),
	})
	r.Standalone = s.hub.Standalone()
	budget := s.hub.PollBudget()
	r.PollBudget = &budget
	return r
}

func getOnly(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	w.Header().Set("Allow", "GET, HEAD")
	return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
}

// writeAdminJSON answers with v, which is always encodable: plain numbers,
// strings and times.
func writeAdminJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"encode status"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(body, '\n'))
	}
}

// Interface guards.
var _ caddy.AdminRouter = adminNellis{}
