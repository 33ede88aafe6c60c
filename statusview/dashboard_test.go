package statusview

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/metrics"
	"github.com/nellis-edge/gateway/sseupstream"
)

const dashboardFile = "../docs/grafana-dashboard.json"

// dashboard is the part of a Grafana dashboard this test reads.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// TestDashboardIsImportable checks what Grafana's import needs: a schema
// version, the DS_PROMETHEUS input every panel and query uses, unique
// panel ids and a place on the grid for each panel.
func TestDashboardIsImportable(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion == 0 || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q: all required", d.SchemaVersion, d.UID, d.Title)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v, want the one Prometheus data source DS_PROMETHEUS", d.Inputs)
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d missing or repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q has no grid position", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: datasource %+v, want ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		for _, q := range p.Targets {
			queries++
			if q.Expr == "" || q.RefID == "" || q.Datasource == nil || q.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: query %+v incomplete", p.Title, q)
			}
		}
	}
	if queries < 20 {
		t.Errorf("only %d queries", queries)
	}
}

var metricName = regexp.MustCompile(`\bnellis_[a-z0-9_]+`)

// TestDashboardQueriesExistingMetrics checks every metric the dashboard
// queries against what the metrics package exposes once every hook has
// run: a renamed metric breaks this test, not a panel in production.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	exposed := exposedSeries(t)
	d := loadDashboard(t)
	queried := map[string]bool{}
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			for _, name := range metricName.FindAllString(q.Expr, -1) {
				queried[name] = true
				if !exposed[name] {
					t.Errorf("panel %q queries %s, which the gateway does not expose", p.Title, name)
				}
			}
		}
	}
	// The panels the operations guide promises.
	for _, name := range []string{
		"nellis_delivery_latency_seconds_bucket", "nellis_feeds", "nellis_upstream_reconnects_total",
		"nellis_upstream_stream_failures_total", "nellis_breaker_transitions_total", "nellis_polls_total",
		"nellis_ws_slow_client_closes_total", "nellis_ws_coalesced_frames_total",
		"nellis_ws_dropped_frames_total", "nellis_ws_connections_open",
		"nellis_feed_staleness_max_seconds", "nellis_poll_budget_short",
	} {
		if !queried[name] {
			t.Errorf("no panel queries %s", name)
		}
	}
}

// exposedSeries gathers a fresh Metrics from its own registry after
// driving every hook once, and returns the series names Prometheus would
// scrape (a histogram as its _bucket, _sum and _count).
func exposedSeries(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	reg := prometheus.NewPedanticRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	m.SetStatusSource(func() metrics.Snapshot {
		return metrics.SnapshotFromFeeds([]hub.FeedStatus{{Source: "sse", Breaker: "closed"}})
	})
	h := m.HubHooks()
	h.StreamUp(1)
	h.StreamDown(1, sseupstream.ReasonStall)
	h.StreamEvent(1, sseupstream.Bid)
	h.StreamDecodeError(1, "bad")
	h.BreakerTransition(1, fallback.Transition{From: fallback.BreakerClosed, To: fallback.BreakerOpen})
	h.PollResult(1, hub.SourcePoll, time.Millisecond, errors.New("boom"))
	h.ReconcileChange(1)
	h.FallbackActivated(1)
	h.Published(&hub.Change{Source: hub.SourceSSE, ReceivedAt: time.Now()})
	r := m.RelayHooks()
	r.ConnOpened()
	r.Authenticated("someone")
	r.MessageIn("ping")
	r.MessageOut("pong")
	r.Coalesced()
	r.Dropped("queue full")
	r.SlowClosed()
	r.DeliveryLatency(time.Millisecond)
	r.UpgradeRefused(429)
	r.ConnClosed(4008)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+suffix] = true
			}
		}
	}
	if !slices.Contains(sortedKeys(names), "nellis_feeds") {
		t.Fatalf("the status gauges are missing: %v", sortedKeys(names))
	}
	return names
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
