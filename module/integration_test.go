package module

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/nellissim"
)

const (
	caddySimURL = "http://127.0.0.1:9082"
	gatewayWS   = "ws://127.0.0.1:9080/ws"
	testToken   = "integration-token"
	testOrigin  = "chrome-extension://allowedextensionid"
)

// gatewayConfig is a whole Caddy config: the gateway on :9080 following
// the simulator at simURL, with extra lines for the nellis block, and a
// `nellis_sim` site on :9082. The gateway's simulator runs outside Caddy,
// as Nellis does: a reload of this config must not touch its streams.
func gatewayConfig(simURL, storage, nellisExtra string) string {
	return fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	grace_period 1ns
	storage file_system %[5]s
	nellis {
		sse_endpoint %[1]s
		api_endpoint %[1]s
		auth_token %[2]s
		%[3]s
	}
}

http://127.0.0.1:9082 {
	bind 127.0.0.1
	nellis_sim {
		seed 7
		auctions 3
	}
}

http://127.0.0.1:9080 {
	bind 127.0.0.1
	nellis_ws /ws {
		allowed_origins %[4]s
	}
	nellis_api /api/*
	nellis_sse_metrics /metrics/sse
	metrics /metrics
}
`, simURL, testToken, nellisExtra, testOrigin, storage)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// extension is a client speaking the extension's protocol.
type extension struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialExtension(t *testing.T, origin string) (*extension, *http.Response, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	conn, res, err := websocket.DefaultDialer.Dial(gatewayWS, h)
	if err != nil {
		return nil, res, err
	}
	e := &extension{t: t, conn: conn}
	t.Cleanup(func() { conn.Close() })
	return e, res, nil
}

func (e *extension) send(v any) {
	e.t.Helper()
	if err := e.conn.WriteJSON(v); err != nil {
		e.t.Fatal(err)
	}
}

// next reads messages until one of type typ satisfies ok (nil: any).
func (e *extension) next(typ string, within time.Duration, ok func(map[string]any) bool) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		_ = e.conn.SetReadDeadline(deadline)
		var m map[string]any
		if err := e.conn.ReadJSON(&m); err != nil {
			e.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m["type"] == typ && (ok == nil || ok(m)) {
			return m
		}
	}
}

// priceIs matches an auctionState for product id showing price.
func priceIs(id int64, price float64) func(map[string]any) bool {
	return func(m map[string]any) bool {
		a, _ := m["auction"].(map[string]any)
		data, _ := a["data"].(map[string]any)
		return a["id"] == fmt.Sprint(id) && data["currentBid"] == price
	}
}

func (e *extension) monitor(id int64) {
	e.send(map[string]any{"type": "authenticate", "token": testToken, "requestId": "req_1"})
	if m := e.next("authenticated", 5*time.Second, nil); m["success"] != true {
		e.t.Fatalf("authenticate: %v", m)
	}
	e.send(map[string]any{
		"type": "startMonitoring", "auctionId": fmt.Sprint(id), "requestId": "req_2",
		"config":   map[string]any{"maxBid": 5, "strategy": "sniping", "incrementAmount": 1, "autoBid": false},
		"metadata": map[string]any{"source": "test", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", id)},
	})
	if m := e.next("response", 5*time.Second, nil); m["success"] != true {
		e.t.Fatalf("startMonitoring: %v", m)
	}
}

// loadCaddy loads a Caddyfile into the test's Caddy (started in-process
// by caddytest on first use, admin on :2999). caddytest skips a test it
// cannot run, say when another process holds the admin port; here that is
// a failure, never a silent pass.
func loadCaddy(t *testing.T, cfg string) {
	t.Helper()
	loaded := false
	t.Run("load config", func(st *testing.T) {
		caddytest.NewTester(st).InitServer(cfg, "caddyfile")
		loaded = !st.Failed()
	})
	if !loaded {
		t.Fatal("caddytest could not load the config (is another process using admin port 2999?)")
	}
}

// newSimulator runs a simulated Nellis beside the Caddy under test.
func newSimulator(t *testing.T) (*nellissim.Simulator, string) {
	t.Helper()
	sim := nellissim.New(nellissim.Config{Seed: 7, Auctions: 3, AuctionLength: 2 * time.Hour})
	sim.Start()
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		sim.Close()
		srv.Close()
	})
	return sim, srv.URL
}

func streams(t *testing.T, sim *nellissim.Simulator, id int64) nellissim.Stats {
	t.Helper()
	st, err := sim.Stats(id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestGatewayThroughCaddy runs the gateway in a real Caddy against the
// simulator: a bid reaches every monitoring client over one upstream
// stream; a config reload keeps the sockets and the stream; `use_sse off`
// by reload closes the stream and prices still move; origins are exact.
func TestGatewayThroughCaddy(t *testing.T) {
	sim, simURL := newSimulator(t)
	storage := t.TempDir()
	loadCaddy(t, gatewayConfig(simURL, storage, "stall_timeout 3s"))

	lot := sim.Auctions()[0]
	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	ext.monitor(lot.ID)
	// The first state comes from a snapshot: the stream never sends prices.
	ext.next("auctionState", 5*time.Second, priceIs(lot.ID, float64(lot.CurrentBid)))

	// A second client of the same product shares the one upstream stream.
	other, _, err := dialExtension(t, "")
	if err != nil {
		t.Fatal(err)
	}
	other.monitor(lot.ID)

	// A bid made before the stream is up arrives by reconcile instead;
	// this part is about the live path, so wait for the stream.
	waitFor(t, 3*time.Second, "the upstream stream", func() bool { return streams(t, sim, lot.ID).StreamsOpen == 1 })
	price := lot.CurrentBid + 7
	sent := time.Now()
	if err := sim.EmitBid(lot.ID, price, "rival-1"); err != nil {
		t.Fatal(err)
	}
	m := ext.next("auctionState", 3*time.Second, priceIs(lot.ID, float64(price)))
	other.next("auctionState", 3*time.Second, priceIs(lot.ID, float64(price)))
	t.Logf("bid to both clients: %v", time.Since(sent))
	if src := m["auction"].(map[string]any)["source"]; src != "sse" {
		t.Errorf("source %v, want sse", src)
	}
	if st := streams(t, sim, lot.ID); st.StreamsOpened != 1 || st.StreamsOpen != 1 {
		t.Fatalf("upstream streams for two clients: %+v, want exactly one", st)
	}

	// A reload with new tuning keeps the sockets, the stream and the counts.
	const bidEvents = `nellis_upstream_events_total{type="bid"}`
	before := scrape(t)[bidEvents]
	if before < 1 {
		t.Fatalf("%s = %v before the reload, want the bid counted", bidEvents, before)
	}
	loadCaddy(t, gatewayConfig(simURL, storage, "stall_timeout 4s"))
	price += 3
	if err := sim.EmitBid(lot.ID, price, "rival-2"); err != nil {
		t.Fatal(err)
	}
	ext.next("auctionState", 3*time.Second, priceIs(lot.ID, float64(price)))
	other.next("auctionState", 3*time.Second, priceIs(lot.ID, float64(price)))
	if st := streams(t, sim, lot.ID); st.StreamsOpened != 1 || st.StreamsOpen != 1 {
		t.Fatalf("after a reload: %+v, want the same single stream", st)
	}
	if after := scrape(t)[bidEvents]; after != before+1 {
		t.Errorf("%s = %v after the reload and one more bid, want %v: counts must continue", bidEvents, after, before+1)
	}

	// The emergency switch: polling only, without dropping a client.
	loadCaddy(t, gatewayConfig(simURL, storage, "use_sse off\n\t\tpoll_interval 300ms"))
	waitFor(t, 3*time.Second, "the stream to close", func() bool { return streams(t, sim, lot.ID).StreamsOpen == 0 })
	price += 4
	if err := sim.EmitBid(lot.ID, price, "rival-3"); err != nil {
		t.Fatal(err)
	}
	m = ext.next("auctionState", 3*time.Second, priceIs(lot.ID, float64(price)))
	// A snapshot brought it: a poll, or the reconcile that follows the
	// stream's close.
	if src := m["auction"].(map[string]any)["source"]; src != "poll" && src != "reconcile" {
		t.Errorf("source with use_sse off: %v, want a snapshot's", src)
	}
	if st := streams(t, sim, lot.ID); st.StreamsOpened != 1 {
		t.Errorf("use_sse off opened streams: %+v", st)
	}

	// Origins are exact.
	if _, res, err := dialExtension(t, "chrome-extension://someoneelse"); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: err=%v res=%v, want 403", err, res)
	}

	// The nellis_sim handler serves a simulated Nellis through Caddy.
	var lots []nellissim.Auction
	getJSON(t, caddySimURL+"/_sim/auctions", &lots)
	if len(lots) != 3 {
		t.Errorf("nellis_sim lists %d lots, want 3", len(lots))
	}

	// Unloading the gateway says goodbye (1001) and leaves nothing running.
	loadCaddy(t, "{\n\tadmin localhost:2999\n}\n")
	_ = ext.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ext.conn.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Errorf("socket ended with %v, want close 1001 (going away)", err)
			}
			break
		}
	}
	waitFor(t, 5*time.Second, "the gateway's goroutines to end", func() bool {
		return len(gatewayGoroutines()) == 0
	})

	// Started again on the same storage, the gateway remembers what the
	// user monitors and follows it again without being asked.
	loadCaddy(t, gatewayConfig(simURL, storage, ""))
	back, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	back.send(map[string]any{"type": "authenticate", "token": testToken, "requestId": "req_9"})
	// (Earlier tests in this process may have left the user other lots.)
	back.next("monitoredAuctions", 5*time.Second, func(m map[string]any) bool {
		auctions, _ := m["auctions"].([]any)
		for _, a := range auctions {
			if a.(map[string]any)["id"] == fmt.Sprint(lot.ID) {
				return true
			}
		}
		if len(auctions) > 0 { // the list before authenticating is empty
			t.Errorf("after a restart the user monitors %v, not lot %d", auctions, lot.ID)
		}
		return len(auctions) > 0
	})
	price += 5
	waitFor(t, 3*time.Second, "the restarted gateway to stream the lot again", func() bool {
		return streams(t, sim, lot.ID).StreamsOpen == 1
	})
	if err := sim.EmitBid(lot.ID, price, "rival-4"); err != nil {
		t.Fatal(err)
	}
	back.next("auctionState", 3*time.Second, priceIs(lot.ID, float64(price)))
}

// gatewayGoroutines lists the goroutines running the gateway's code (not
// the test's own simulator).
func gatewayGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, pkg := range []string{"/hub.", "/wsrelay.", "/sseupstream.", "/fallback.", "/module.", "/metrics."} {
			if strings.Contains(g, "github.com/nellis-edge/gateway"+pkg) && !strings.Contains(g, "_test.go") {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			if left := gatewayGoroutines(); len(left) > 0 && strings.Contains(what, "goroutines") {
				t.Logf("still running:\n%s", strings.Join(left, "\n\n"))
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
