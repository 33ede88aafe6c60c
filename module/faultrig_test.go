package module

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/nellissim"
	"github.com/nellis-edge/gateway/statusview"
)

// The fault suite: the gateway in a real Caddy follows an in-process
// simulator while the simulator misbehaves, and a client speaking the
// extension's protocol watches one lot. Each test asserts what a bidder
// would notice (the price, how fast it came, whether it came twice) and
// that the gateway's metrics name what went wrong.
//
// Caddy runs once per test binary and the `nellis` app's state outlives a
// reload, so every test starts and ends by loading a config without the
// app: the state is destroyed and the next test gets fresh feeds, fresh
// counters and a fresh relay, whatever ran before.
//
// This file holds the suite's rig: the gateway's config and the metrics
// scrape; the watching client is in watcher_test.go. The tests are in faults_test.go (upstream
// faults), clientfaults_test.go (misbehaving clients, reloads under load)
// and shutdown_test.go.

const (
	gatewayMetrics    = "http://127.0.0.1:9080/metrics"
	gatewaySSEMetrics = "http://127.0.0.1:9080/metrics/sse"
	gatewayAPIStatus  = "http://127.0.0.1:9080/api/status"
	adminFeeds        = testAdmin + "/nellis/feeds"
)

// faultConfig is the gateway alone on :9080, following sseURL and apiURL,
// with Prometheus metrics on /metrics and extra lines for the nellis
// block.
func faultConfig(sseURL, apiURL, storage, nellisExtra string) string {
	return fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	grace_period 1ns
	storage file_system %[4]s
	nellis {
		sse_endpoint %[1]s
		api_endpoint %[2]s
		auth_token %[3]s
		%[5]s
	}
}

http://127.0.0.1:9080 {
	bind 127.0.0.1
	nellis_ws /ws {
		allowed_origins %[6]s
	}
	nellis_api /api/*
	nellis_sse_metrics /metrics/sse
	metrics /metrics
}
`, sseURL, apiURL, testToken, storage, nellisExtra, testOrigin)
}

// startGateway loads a fresh gateway following sseURL and apiURL, with
// storage of its own.
func startGateway(t *testing.T, sim *nellissim.Simulator, sseURL, apiURL, nellisExtra string) *caddytest.Tester {
	t.Helper()
	return startGatewayIn(t, sim, sseURL, apiURL, t.TempDir(), nellisExtra)
}

// startGatewayIn loads a fresh gateway following sseURL and apiURL, with
// the storage directory chosen by the caller, so that a reload can keep
// it. When the test ends it stops the gateway and checks that every
// upstream stream to sim was closed with it.
func startGatewayIn(t *testing.T, sim *nellissim.Simulator, sseURL, apiURL, storage, nellisExtra string) *caddytest.Tester {
	t.Helper()
	tester := caddytest.NewTester(t)
	tester.InitServer(noGatewayConfig, "caddyfile")
	tester.InitServer(faultConfig(sseURL, apiURL, storage, nellisExtra), "caddyfile")
	t.Cleanup(func() {
		tester.InitServer(noGatewayConfig, "caddyfile")
		var st nellissim.Stats
		if !poll(3*time.Second, func() bool {
			var err error
			st, err = sim.Stats(0)
			return err != nil || st.StreamsOpen == 0
		}) {
			t.Errorf("%d upstream streams still open 3s after the gateway stopped", st.StreamsOpen)
		}
	})
	return tester
}

func snapshotRequests(st nellissim.Stats) int64 {
	return st.Snapshots.JSON + st.Snapshots.Data + st.Snapshots.HTML
}

// settle waits until the feed of id has its upstream stream open and has
// fetched its first snapshot and the reconcile that follows the stream's
// start, so that a bid emitted next can only arrive over the stream. A
// failure says what the simulator and the feed's status showed: once in
// about 25 loaded runs of the package (a stream that opened and
// snapshots fetched take ~0.1 s), neither was there 5 s on, and
// nothing was logged.
func settle(t *testing.T, sim *nellissim.Simulator, id int64) {
	t.Helper()
	var st nellissim.Stats
	if !poll(5*time.Second, func() bool {
		st = streams(t, sim, id)
		return st.StreamsOpen == 1 && snapshotRequests(st) >= 2
	}) {
		var rep statusview.Report
		getJSON(t, adminFeeds, &rep)
		t.Fatalf("the stream to open and the first snapshots to be fetched: not within 5s; the simulator saw %+v, the feeds are %+v", st, rep.Feeds)
	}
}

// bidder emits rival bids on one lot, each from a new rival, each one
// dollar above the current price.
type bidder struct {
	sim *nellissim.Simulator
	id  int64
	n   int
}

// bid places the next bid and returns the lot as the simulator has it
// afterwards: the price, next bid and bid count a client must see.
func (b *bidder) bid(t *testing.T) nellissim.Auction {
	t.Helper()
	b.n++
	amount := lotNow(t, b.sim, b.id).NextBid
	if err := b.sim.EmitBid(b.id, amount, fmt.Sprintf("rival-%d", b.n)); err != nil {
		t.Fatalf("bid %d on lot %d: %v", amount, b.id, err)
	}
	return lotNow(t, b.sim, b.id)
}

// promSample is one scrape of the gateway's /metrics: value by series,
// e.g. `nellis_upstream_stream_failures_total{reason="stall"}`.
type promSample map[string]float64

func scrape(t *testing.T) promSample {
	t.Helper()
	res, err := http.Get(gatewayMetrics)
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape metrics: %s", res.Status)
	}
	p := promSample{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the last space: label values may hold spaces.
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("scrape metrics: bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape metrics: bad line %q: %v", line, err)
		}
		p[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	if len(p) == 0 {
		// Caddy answers 200 and nothing where no route matches.
		t.Fatalf("%s answered no metrics: the config on the fixed caddytest ports is not this test's (another test process?)", gatewayMetrics)
	}
	return p
}

func (p promSample) get(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := p[series]
	if !ok {
		var names []string
		for k := range p {
			if strings.HasPrefix(k, "nellis_") {
				names = append(names, k)
			}
		}
		t.Fatalf("metric %s is not exposed (%d series, nellis ones: %q)", series, len(p), names)
	}
	return v
}

// grew returns how much series grew from before to now.
func grew(t *testing.T, before promSample, series string) float64 {
	t.Helper()
	return scrape(t).get(t, series) - before.get(t, series)
}

// growth is how much series grew since before; a series missing before
// (a labelled counter not yet incremented) counts from 0.
func growth(t *testing.T, before promSample, series string) float64 {
	t.Helper()
	return scrape(t).get(t, series) - before[series]
}

// awaitGrowth waits until series has grown by at least n since before.
func awaitGrowth(t *testing.T, before promSample, series string, n float64, within time.Duration) time.Time {
	t.Helper()
	return eventually(t, within, series+" to grow by "+fmt.Sprint(n), func() bool {
		return grew(t, before, series) >= n
	})
}

func closedWith(code string) string {
	return `nellis_ws_connections_closed_total{code="` + code + `"}`
}

func dropped(reason string) string {
	return `nellis_ws_dropped_frames_total{reason="` + reason + `"}`
}

func failures(reason string) string {
	return `nellis_upstream_stream_failures_total{reason="` + reason + `"}`
}

const (
	coalescedFrames     = "nellis_ws_coalesced_frames_total"
	decodeErrors        = "nellis_upstream_decode_errors_total"
	fallbackActivations = "nellis_fallback_activations_total"
	breakerClosed       = `nellis_breaker_transitions_total{from="half-open",to="closed"}`
	otherEvents         = `nellis_upstream_events_total{type="other"}`
	slowCloses          = "nellis_ws_slow_client_closes_total"
)

// rig is the first lot of a fresh simulator followed by a fresh gateway and
// watched by one client, with its stream open and a first bid delivered
// over it.
type rig struct {
	tester *caddytest.Tester
	sim    *nellissim.Simulator
	id     int64
	w      *watcher
	bids   *bidder
	before promSample // the gateway's metrics before any fault
}

func newRig(t *testing.T, nellisExtra string) *rig {
	t.Helper()
	sim, simURL := newSimulator(t)
	r := &rig{sim: sim, tester: startGateway(t, sim, simURL, simURL, nellisExtra)}
	r.before = scrape(t)
	lot := sim.Auctions()[0]
	r.id = lot.ID
	r.bids = &bidder{sim: sim, id: lot.ID}
	r.w = watch(t, lot.ID)
	r.w.await(t, float64(lot.CurrentBid), time.Now().Add(5*time.Second))
	settle(t, sim, lot.ID)
	r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
	return r
}

func (r *rig) stats(t *testing.T) nellissim.Stats {
	t.Helper()
	return streams(t, r.sim, r.id)
}

// userConnections is the number of sockets the test user has open, as the
// extension's "test connection" button sees it.
func userConnections(t *testing.T) int {
	t.Helper()
	return connectionsOf(t, testToken)
}

// connectionsOf is the number of sockets the user of token has open.
func connectionsOf(t *testing.T, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, gatewayAPIStatus, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /api/status: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/status: %s", res.Status)
	}
	var st struct {
		Connections int `json:"connections"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("GET /api/status: %v", err)
	}
	return st.Connections
}

// misbehaver is a client of the test user monitoring the rig's lot, read
// only when the test says so.
func misbehaver(t *testing.T, r *rig) *extension {
	t.Helper()
	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatalf("dial the gateway: %v", err)
	}
	ext.monitor(r.id)
	return ext
}

// readUntilEnd reads conn until it fails and returns why, with every text
// message it read before. It gives up after within.
func readUntilEnd(conn *websocket.Conn, within time.Duration) ([]map[string]any, error) {
	_ = conn.SetReadDeadline(time.Now().Add(within))
	var got []map[string]any
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return got, err
		}
		var m map[string]any
		if json.Unmarshal(data, &m) == nil {
			got = append(got, m)
		}
	}
}

// grewBy waits until series has grown since before by want (a client's
// end is counted just after its socket closes), then checks it grew by
// exactly that.
func grewBy(t *testing.T, before promSample, series string, want float64) {
	t.Helper()
	var now promSample
	poll(3*time.Second, func() bool {
		now = scrape(t)
		v, exposed := now[series]
		return exposed && v-before[series] >= want
	})
	if _, exposed := now[series]; !exposed {
		t.Errorf("%s never appeared, want it grown by %v", series, want)
	} else if n := now[series] - before[series]; n != want {
		t.Errorf("%s grew by %v, want %v", series, n, want)
	}
}

// leavesNoGoroutine checks, once the test's gateway has stopped (its
// cleanup runs first: cleanups run last-registered first), that none of
// the gateway's goroutines outlived it. Call it before starting the
// gateway.
func leavesNoGoroutine(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		var left []string
		if !poll(5*time.Second, func() bool {
			left = gatewayGoroutines()
			return len(left) == 0
		}) {
			t.Errorf("%d gateway goroutines still running 5s after the gateway stopped:\n%s",
				len(left), strings.Join(left, "\n\n"))
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// healthyAfter checks the rig's healthy client: a bid made now reaches it
// over the stream, and nothing it received so far broke the guarantees.
func (r *rig) healthyAfter(t *testing.T, what string) {
	t.Helper()
	lot := r.bids.bid(t)
	r.w.awaitBid(t, lot, time.Now().Add(2*time.Second), "sse")
	if err := r.w.ended(); err != nil {
		t.Fatalf("after %s the healthy client's socket ended: %v", what, err)
	}
	r.w.checkHistory(t, r.before)
}
