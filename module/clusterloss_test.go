package module

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/natstest"
	"github.com/nellis-edge/gateway/statusview"
)

// A gateway cut off from NATS (a proxy between it and NATS, cut by the
// test): a lease later readiness answers 503 with the reason, the lot runs
// standalone and its client keeps getting prices, and the user's auto-bid
// says it is paused; with the network back the gateway is ready again,
// owns the lot again and the pause is gone.
func TestClusterReadyAndAutoBidWithoutNATS(t *testing.T) {
	proxy := natstest.Start(t).NewProxy()
	sim, simURL := newSimulator(t)
	loadCaddy(t, noGatewayConfig)
	defer loadCaddy(t, noGatewayConfig)
	loadCaddy(t, gatewayConfig(simURL, t.TempDir(), fmt.Sprintf("cookie_key %s\n\t\tcluster %s {\n\t\t\tnode gw-cut\n\t\t\tlease 1s\n\t\t}\n", clusterKeyHex, proxy.URL())))
	gatewayAPI(t, http.MethodPost, "/api/auth", testToken, `{"cookies":"sim_user=alice"}`)

	lot := sim.Auctions()[0]
	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	ext.send(map[string]any{"type": "authenticate", "token": testToken, "requestId": "req_1"})
	if m := ext.next("authenticated", 5*time.Second, nil); m["success"] != true {
		t.Fatalf("authenticate: %v", m)
	}
	ext.send(map[string]any{
		"type": "startMonitoring", "auctionId": fmt.Sprint(lot.ID), "requestId": "req_2",
		// Sniping far from the close: auto-bid waits, and bids nothing.
		"config":   map[string]any{"maxBid": lot.NextBid + 500, "strategy": "sniping", "incrementAmount": 1, "autoBid": true},
		"metadata": map[string]any{"source": "test", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", lot.ID)},
	})
	role := func(want string) func() bool {
		return func() bool {
			r := adminReport(t)
			return len(r.Feeds) == 1 && r.Feeds[0].Role == want
		}
	}
	eventually(t, 5*time.Second, "the lot owned here", role("owner"))
	if status, v := adminReadiness(t); status != http.StatusOK {
		t.Fatalf("connected: %d %+v", status, v)
	}
	paused := func(m map[string]any) bool {
		st, _ := m["state"].(map[string]any)
		msg, _ := st["message"].(string)
		return m["auctionId"] == fmt.Sprint(lot.ID) && strings.Contains(msg, "Cluster unavailable")
	}

	proxy.Cut()
	cut := time.Now()
	eventually(t, 3*time.Second, "readiness 503 without NATS", func() bool {
		status, v := adminReadiness(t)
		return status == http.StatusServiceUnavailable && v.Reason == statusview.ReasonStandalone
	})
	t.Logf("not ready %v after the cut", time.Since(cut).Round(time.Millisecond))
	eventually(t, 3*time.Second, "the lot standalone", role("standalone"))
	if !adminReport(t).Standalone {
		t.Fatal("/nellis/feeds does not say standalone")
	}
	ext.next("autoBidState", 5*time.Second, paused)
	// Its client keeps getting prices from the gateway's own stream.
	price := lot.NextBid + 7
	if err := sim.EmitBid(lot.ID, price, "rival"); err != nil {
		t.Fatal(err)
	}
	ext.next("auctionState", 5*time.Second, priceIs(lot.ID, float64(price)))

	proxy.Restore()
	restored := time.Now()
	eventually(t, 3*time.Second, "ready again", func() bool {
		status, _ := adminReadiness(t)
		return status == http.StatusOK
	})
	eventually(t, 5*time.Second, "the lot owned here again", role("owner"))
	t.Logf("owner again %v after the restore", time.Since(restored).Round(time.Millisecond))
	ext.next("autoBidState", 5*time.Second, func(m map[string]any) bool {
		st, _ := m["state"].(map[string]any)
		return m["auctionId"] == fmt.Sprint(lot.ID) && st["status"] == "waiting"
	})
}

// A gateway whose NATS server stays connected but answers no JetStream
// call (the proxy sends it to a server without JetStream, as a server on
// the minority side of a NATS partition answers no write): within lease
// + 1 s readiness answers 503 and nellis_cluster_standalone is 1; once
// JetStream answers again the gateway is ready and the gauge back to 0.
func TestClusterNotReadyWhileJetStreamIsAway(t *testing.T) {
	js := natstest.Start(t)
	core := natstest.StartCore(t)
	proxy := js.NewProxy()
	sim, simURL := newSimulator(t)
	loadCaddy(t, noGatewayConfig)
	defer loadCaddy(t, noGatewayConfig)
	loadCaddy(t, gatewayConfig(simURL, t.TempDir(), fmt.Sprintf("cookie_key %s\n\t\tcluster %s {\n\t\t\tnode gw-minority\n\t\t\tlease 1s\n\t\t}\n", clusterKeyHex, proxy.URL())))
	// A client watching a lot, owned here: the node is in the cluster.
	lot := sim.Auctions()[0]
	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	ext.send(map[string]any{"type": "authenticate", "token": testToken, "requestId": "req_1"})
	if m := ext.next("authenticated", 5*time.Second, nil); m["success"] != true {
		t.Fatalf("authenticate: %v", m)
	}
	ext.send(map[string]any{
		"type": "startMonitoring", "auctionId": fmt.Sprint(lot.ID), "requestId": "req_2",
		"metadata": map[string]any{"source": "test", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", lot.ID)},
	})
	eventually(t, 5*time.Second, "the lot owned here", func() bool {
		r := adminReport(t)
		return len(r.Feeds) == 1 && r.Feeds[0].Role == "owner"
	})
	const gauge = "nellis_cluster_standalone"
	if status, v := adminReadiness(t); status != http.StatusOK || scrape(t)[gauge] != 0 {
		t.Fatalf("with JetStream: readiness %d %+v, %s %v", status, v, gauge, scrape(t)[gauge])
	}

	proxy.Redirect(core)
	away := time.Now()
	eventually(t, 2*time.Second, "readiness 503 and the gauge set without JetStream", func() bool {
		status, v := adminReadiness(t)
		return status == http.StatusServiceUnavailable && v.Reason == statusview.ReasonStandalone && scrape(t)[gauge] == 1
	})
	t.Logf("not ready %v after JetStream went", time.Since(away).Round(time.Millisecond))

	proxy.Redirect(js)
	back := time.Now()
	eventually(t, 3*time.Second, "ready again with JetStream", func() bool {
		status, _ := adminReadiness(t)
		return status == http.StatusOK && scrape(t)[gauge] == 0
	})
	t.Logf("ready %v after JetStream came back", time.Since(back).Round(time.Millisecond))
}

// A gateway with no client and no feed, cut off from NATS: a load
// balancer must not send it new clients either. A lease after the cut
// (5 s allowed, for a loaded machine) its readiness answers 503 and
// nellis_cluster_standalone is 1 (the gauge
// stayed 0 on a node with no feed); with the network back it is ready
// and the gauge is 0 again.
func TestClusterIdleNodeNotReadyWithoutNATS(t *testing.T) {
	proxy := natstest.Start(t).NewProxy()
	_, simURL := newSimulator(t)
	loadCaddy(t, noGatewayConfig)
	defer loadCaddy(t, noGatewayConfig)
	loadCaddy(t, gatewayConfig(simURL, t.TempDir(), fmt.Sprintf("cookie_key %s\n\t\tcluster %s {\n\t\t\tnode gw-idle\n\t\t\tlease 1s\n\t\t}\n", clusterKeyHex, proxy.URL())))
	const gauge = "nellis_cluster_standalone"
	if status, v := adminReadiness(t); status != http.StatusOK || scrape(t)[gauge] != 0 {
		t.Fatalf("connected: readiness %d %+v, %s %v", status, v, gauge, scrape(t)[gauge])
	}
	if n := len(adminReport(t).Feeds); n != 0 {
		t.Fatalf("%d feeds on an idle node", n)
	}

	proxy.Cut()
	cut := time.Now()
	eventually(t, 5*time.Second, "readiness 503 and the gauge set without NATS", func() bool {
		status, v := adminReadiness(t)
		return status == http.StatusServiceUnavailable && v.Reason == statusview.ReasonStandalone && scrape(t)[gauge] == 1
	})
	t.Logf("not ready, gauge 1, %v after the cut", time.Since(cut).Round(time.Millisecond))

	proxy.Restore()
	eventually(t, 10*time.Second, "ready again and the gauge back to 0", func() bool {
		status, _ := adminReadiness(t)
		return status == http.StatusOK && scrape(t)[gauge] == 0
	})
}
