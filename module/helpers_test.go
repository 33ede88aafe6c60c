package module

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/nellissim"
)

// Helpers shared by the tests that run the gateway in the test binary's
// Caddy (started by caddytest on first use, admin on :2999).

const (
	gatewayWS  = "ws://127.0.0.1:9080/ws"
	testToken  = "integration-token"
	testOrigin = "chrome-extension://allowedextensionid"
	testAdmin  = "http://localhost:2999"
)

// noGatewayConfig is a Caddy without the nellis app: loading it stops the
// gateway as a shutdown would, and ends the state a previous test left
// running, feeds, counters and relay.
const noGatewayConfig = "{\n\tadmin localhost:2999\n}\n"

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

func streams(t *testing.T, sim *nellissim.Simulator, id int64) nellissim.Stats {
	t.Helper()
	st, err := sim.Stats(id)
	if err != nil {
		t.Fatal(err)
	}
	return st
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

// newSimulator runs a simulated Nellis beside the Caddy under test.
func newSimulator(t *testing.T) (*nellissim.Simulator, string) {
	t.Helper()
	return serveSimulator(t, httptest.NewServer)
}

// newTLSSimulator runs a simulated Nellis behind a certificate nobody
// trusts. The handshake errors it logs are the point of the test, not
// noise worth printing.
func newTLSSimulator(t *testing.T) (*nellissim.Simulator, string) {
	t.Helper()
	return serveSimulator(t, func(h http.Handler) *httptest.Server {
		srv := httptest.NewUnstartedServer(h)
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		return srv
	})
}

// serveSimulator starts a simulator and serves it with serve until the
// test ends.
func serveSimulator(t *testing.T, serve func(http.Handler) *httptest.Server) (*nellissim.Simulator, string) {
	return serveSeededSimulator(t, 7, serve)
}

// serveSeededSimulator is serveSimulator with lots of another seed: the
// hub outlives configs, and a feed an earlier test in the process left
// lingering knows the bids made on seed 7's lots.
func serveSeededSimulator(t *testing.T, seed int64, serve func(http.Handler) *httptest.Server) (*nellissim.Simulator, string) {
	sim := nellissim.New(nellissim.Config{Seed: seed, Auctions: 3, AuctionLength: 2 * time.Hour})
	sim.Start()
	srv := serve(sim)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		sim.Close()
		srv.Close()
	})
	return sim, srv.URL
}

// lotNow is the simulator's view of lot id.
func lotNow(t *testing.T, sim *nellissim.Simulator, id int64) nellissim.Auction {
	t.Helper()
	for _, a := range sim.Auctions() {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("lot %d not in the simulator", id)
	return nellissim.Auction{}
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

// poll checks cond every 10ms until it holds, and reports whether it did
// within that time.
func poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventually waits until cond holds and returns when it first did, or
// fails the test after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	if !poll(within, cond) {
		t.Fatalf("%s: not within %v", what, within)
	}
	return time.Now()
}

// dialCounter listens on a local port, for a test that something never
// dials it: it counts the connections made and closes each. It listens
// until the test ends.
func dialCounter(t *testing.T) (addr string, dials *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	dials = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), dials
}

// expectParkedThroughPing waits for the gateway to park every one of
// exts, idle, then has each ping and get its pong, and waits for them to
// park again; kind ("TLS ") words the sockets in a failure.
func expectParkedThroughPing(t *testing.T, exts []*extension, kind string) {
	t.Helper()
	eventually(t, 5*time.Second, "all idle "+kind+"sockets parked", func() bool {
		return adminReport(t).Totals.Parked == len(exts)
	})
	for _, ext := range exts {
		ext.send(map[string]any{"type": "ping"})
		ext.next("pong", 5*time.Second, nil)
	}
	eventually(t, 5*time.Second, "all "+kind+"sockets parked again", func() bool {
		return adminReport(t).Totals.Parked == len(exts)
	})
}
