package module

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/nellissim"
)

const caddySimURL = "http://127.0.0.1:9082"

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
	eventually(t, 3*time.Second, "the upstream stream", func() bool { return streams(t, sim, lot.ID).StreamsOpen == 1 })
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
	eventually(t, 3*time.Second, "the stream to close", func() bool { return streams(t, sim, lot.ID).StreamsOpen == 0 })
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
	loadCaddy(t, noGatewayConfig)
	_ = ext.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ext.conn.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Errorf("socket ended with %v, want close 1001 (going away)", err)
			}
			break
		}
	}
	if !poll(5*time.Second, func() bool { return len(gatewayGoroutines()) == 0 }) {
		t.Fatalf("the gateway's goroutines still running 5s after it was unloaded:\n%s",
			strings.Join(gatewayGoroutines(), "\n\n"))
	}

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
	eventually(t, 3*time.Second, "the restarted gateway to stream the lot again", func() bool {
		return streams(t, sim, lot.ID).StreamsOpen == 1
	})
	if err := sim.EmitBid(lot.ID, price, "rival-4"); err != nil {
		t.Fatal(err)
	}
	back.next("auctionState", 3*time.Second, priceIs(lot.ID, float64(price)))
}
