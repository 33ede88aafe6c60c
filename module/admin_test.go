package module

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/statusview"
)

// adminCall makes a request to the test Caddy's admin API.
func adminCall(t *testing.T, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, testAdmin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

func adminReport(t *testing.T) statusview.Report {
	t.Helper()
	status, body := adminCall(t, http.MethodGet, "/nellis/feeds")
	if status != http.StatusOK {
		t.Fatalf("GET /nellis/feeds: %d %s", status, body)
	}
	var r statusview.Report
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("GET /nellis/feeds: %v in %s", err, body)
	}
	return r
}

func adminReadiness(t *testing.T) (int, statusview.Readiness) {
	t.Helper()
	status, body := adminCall(t, http.MethodGet, "/nellis/health/ready")
	var v statusview.Readiness
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET /nellis/health/ready: %v in %s", err, body)
	}
	return status, v
}

// TestAdminFeedsAndHealth follows two watched lots on the admin API: live
// on SSE with their sessions and subscribers; stale once snapshots fail
// with SSE switched off, which makes the gateway unready until snapshots
// recover; and a config without the app, which is live but not ready.
func TestAdminFeedsAndHealth(t *testing.T) {
	sim, simURL := newSimulator(t)
	storage := t.TempDir()
	loadCaddy(t, noGatewayConfig)
	loadCaddy(t, gatewayConfig(simURL, storage, "poll_interval 300ms"))

	if status, body := adminCall(t, http.MethodGet, "/nellis/health/live"); status != http.StatusOK {
		t.Fatalf("live: %d %s", status, body)
	}
	if status, v := adminReadiness(t); status != http.StatusOK || !v.Ready || v.Feeds != 0 {
		t.Fatalf("ready with nothing watched: %d %+v", status, v)
	}

	lots := sim.Auctions()[:2]
	for _, lot := range lots {
		ext, _, err := dialExtension(t, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		ext.monitor(lot.ID)
	}
	var r statusview.Report
	eventually(t, 5*time.Second, "both feeds on sse with a first snapshot", func() bool {
		r = adminReport(t)
		return len(r.Feeds) == 2 && r.Totals.OpenStreams == 2 && r.Feeds[0].Seq > 0 && r.Feeds[1].Seq > 0
	})
	// Through Caddy's plain-HTTP listener too, an idle socket is parked
	// without a reader goroutine (module/conn.go unwraps Caddy's conn).
	eventually(t, 5*time.Second, "both idle sockets parked", func() bool {
		return adminReport(t).Totals.Parked == 2
	})
	watched := map[int64]bool{lots[0].ID: true, lots[1].ID: true}
	for _, f := range r.Feeds {
		if !watched[f.ProductID] || f.Source != "sse" || f.Breaker != "closed" || f.SessionID == "" ||
			f.Subscribers != 1 || f.Epoch == "" || f.Seq == 0 || f.SinceLastByte < 0 || f.SinceLastByte > 3 {
			t.Errorf("feed %d: %+v, want a watched lot live on sse with one subscriber", f.ProductID, f)
		}
	}
	if tt := r.Totals; !r.Started || tt.Feeds != 2 || tt.FeedsBySource["sse"] != 2 || tt.Connections != 2 ||
		tt.Authenticated != 2 || tt.Subscribers != 2 || tt.Stale != 0 {
		t.Errorf("totals: started=%v %+v", r.Started, tt)
	}
	if r.At.IsZero() || len(r.Latency.Delivery.Buckets) == 0 {
		t.Errorf("report without time or latency histogram: at %v, latency %+v", r.At, r.Latency)
	}

	// Snapshots fail and SSE is switched off: nothing feeds either lot.
	for _, lot := range lots {
		if err := sim.FailSnapshots(lot.ID, 1_000_000, http.StatusInternalServerError); err != nil {
			t.Fatal(err)
		}
	}
	loadCaddy(t, gatewayConfig(simURL, storage, "use_sse off\n\t\tpoll_interval 300ms"))
	var v statusview.Readiness
	eventually(t, 5*time.Second, "the gateway to turn unready", func() bool {
		var status int
		status, v = adminReadiness(t)
		return status == http.StatusServiceUnavailable
	})
	if v.Ready || v.Feeds != 2 || v.Stale != 2 || !strings.Contains(v.Reason, "2 of 2 feeds stale") {
		t.Errorf("unready verdict: %+v", v)
	}
	for _, f := range adminReport(t).Feeds {
		if f.Source != "poll" || f.Breaker != "disabled" || f.Degraded == "" || !statusview.Stale(f) {
			t.Errorf("feed %d with failing snapshots and no SSE: %+v", f.ProductID, f)
		}
	}

	// Snapshots recover: polled feeds are fresh, the gateway is ready.
	for _, lot := range lots {
		if err := sim.FailSnapshots(lot.ID, 0, http.StatusInternalServerError); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "the gateway to be ready again", func() bool {
		status, _ := adminReadiness(t)
		return status == http.StatusOK
	})

	if status, _ := adminCall(t, http.MethodPost, "/nellis/feeds"); status != http.StatusMethodNotAllowed {
		t.Errorf("POST /nellis/feeds: %d, want 405", status)
	}
	if status, body := adminCall(t, http.MethodHead, "/nellis/health/ready"); status != http.StatusOK || len(body) != 0 {
		t.Errorf("HEAD ready: %d %q", status, body)
	}

	// A config without the app: the process is live, the gateway is not.
	loadCaddy(t, noGatewayConfig)
	if status, _ := adminCall(t, http.MethodGet, "/nellis/health/live"); status != http.StatusOK {
		t.Errorf("live without the app: %d", status)
	}
	if status, v := adminReadiness(t); status != http.StatusServiceUnavailable || v.Reason != "nellis app not running" {
		t.Errorf("ready without the app: %d %+v", status, v)
	}
	if status, body := adminCall(t, http.MethodGet, "/nellis/feeds"); status != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), "nellis app not running") {
		t.Errorf("feeds without the app: %d %s", status, body)
	}
}
