package metrics

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/sseupstream"
)

func TestCollectorsPassLint(t *testing.T) {
	m := New()
	m.SetStatusSource(func() Snapshot { return Snapshot{OpenStreams: 1} })
	for _, c := range m.collectors() {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatalf("lint: %v", err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestEveryMetricIsNamespaced(t *testing.T) {
	m := New()
	m.SetStatusSource(func() Snapshot { return Snapshot{} })
	families, err := registered(t, m).Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) < 25 {
		t.Errorf("gathered %d metric families, want at least 25 (a collector produced nothing?)", len(families))
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "nellis_") {
			t.Errorf("metric %q is not named nellis_*", f.GetName())
		}
	}
}

// A reload gives Caddy a new registry; counts made before it must show
// through it, and counts made after it through both.
func TestRegisterIntoNewRegistryOnReloadKeepsCounts(t *testing.T) {
	m := New()
	hooks := m.HubHooks()
	relay := m.RelayHooks()

	first := registered(t, m)
	hooks.FallbackActivated(1)
	relay.ConnOpened()

	second := registered(t, m) // the reload
	if err := m.Register(second); err != nil {
		t.Fatalf("registering twice into the same registry: %v", err)
	}
	hooks.FallbackActivated(2)

	want := `
# HELP nellis_fallback_activations_total Times a feed's breaker opened and snapshot polling took over from its stream.
# TYPE nellis_fallback_activations_total counter
nellis_fallback_activations_total 2
# HELP nellis_ws_connections_open WebSocket connections open now.
# TYPE nellis_ws_connections_open gauge
nellis_ws_connections_open 1
`
	expectMetrics(t, second, want, "nellis_fallback_activations_total", "nellis_ws_connections_open")
	expectMetrics(t, first, want, "nellis_fallback_activations_total", "nellis_ws_connections_open")
}

// A collector that is not ours but describes itself exactly as one of ours
// does is a real conflict, not a reload.
func TestRegisterRejectsAForeignCollectorUnderOurName(t *testing.T) {
	reg := prometheus.NewRegistry()
	impostor := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nellis_reconcile_changes_total",
		Help: "Gap-healing snapshots that found a change the stream had missed.",
	})
	reg.MustRegister(impostor)

	err := New().Register(reg)
	if err == nil {
		t.Fatal("Register succeeded over a foreign collector with the same name")
	}
	var dup prometheus.AlreadyRegisteredError
	if !errors.As(err, &dup) || dup.ExistingCollector != impostor {
		t.Errorf("error %v does not name the conflicting collector", err)
	}
}

func TestRegisterNilRegistererFails(t *testing.T) {
	if err := New().Register(nil); err == nil {
		t.Fatal("Register(nil) succeeded")
	}
}

// Drive every hook with a distinctive product id and user name, then look
// for them in every label of every series.
func TestNoLabelCarriesAProductIDOrUser(t *testing.T) {
	const productID = 987654321
	const user = "alice@example.com"
	m := New()
	m.now = func() time.Time { return time.Unix(100, 0) }
	m.SetStatusSource(func() Snapshot {
		return SnapshotFromFeeds([]hub.FeedStatus{{ProductID: productID, Source: "sse", Breaker: "closed", SessionID: "s"}})
	})
	h := m.HubHooks()
	h.StreamUp(productID)
	h.StreamDown(productID, sseupstream.ReasonStall)
	h.StreamEvent(productID, sseupstream.Bid)
	h.StreamDecodeError(productID, "ch_product_bids:987654321")
	h.BreakerTransition(productID, fallback.Transition{From: fallback.BreakerClosed, To: fallback.BreakerOpen})
	h.PollResult(productID, hub.SourcePoll, time.Millisecond, nil)
	h.ReconcileChange(productID)
	h.FallbackActivated(productID)
	h.Published(&hub.Change{ProductID: productID, Source: hub.SourceSSE, ReceivedAt: time.Unix(99, 0)})
	r := m.RelayHooks()
	r.ConnOpened()
	r.Authenticated(user)
	r.MessageIn("987654321")
	r.MessageOut("auction:987654321")
	r.Dropped("987654321")
	r.UpgradeRefused(987654321)
	r.ConnClosed(987654321)

	families, err := registered(t, m).Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowedNames := map[string]bool{
		"reason": true, "type": true, "from": true, "to": true, "result": true,
		"source": true, "code": true, "status": true, "state": true, "strategy": true,
	}
	leak := regexp.MustCompile(`987654321|alice`)
	for _, f := range families {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if !allowedNames[l.GetName()] {
					t.Errorf("%s has unexpected label %q", f.GetName(), l.GetName())
				}
				if leak.MatchString(l.GetValue()) {
					t.Errorf("%s{%s=%q} carries a product id or user", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}
