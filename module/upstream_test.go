package module

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/nellis-edge/gateway/nellissim"
)

// TestUpstreamH2TLS follows a simulator that offers h2 over TLS under a
// private authority named by upstream_ca: the lot's price and a bid reach
// the client, and the stream and the snapshot polls share one connection,
// which only h2 allows.
func TestUpstreamH2TLS(t *testing.T) {
	leavesNoGoroutine(t)
	sim := nellissim.New(nellissim.Config{Seed: 7, Auctions: 3, AuctionLength: 2 * time.Hour})
	sim.Start()
	srv, err := sim.Serve(nellissim.ServeOptions{TLS: true})
	if err != nil {
		sim.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sim.Close()
		_ = srv.Close()
	})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	startGateway(t, sim, srv.URL, srv.URL, "upstream_ca "+ca+"\n\t\tpoll_interval 500ms")
	lot := sim.Auctions()[0]
	w := watch(t, lot.ID)
	w.await(t, float64(lot.CurrentBid), time.Now().Add(5*time.Second))
	settle(t, sim, lot.ID)
	bids := &bidder{sim: sim, id: lot.ID}
	w.awaitBid(t, bids.bid(t), time.Now().Add(2*time.Second), "sse")
	if open, accepted := srv.Open(), srv.Accepted(); open != 1 || accepted != 1 {
		t.Errorf("the stream and the polls took %d connections (%d open), want one shared h2 connection", accepted, open)
	}
}

// TestSimOverTLSInCaddy serves `nellis_sim` on an https site of the same
// Caddy with a certificate of its own, as README.md describes: the site
// answers h2, and a gateway trusting that certificate by upstream_ca
// follows a lot through it, the price first, then a bid by the stream.
func TestSimOverTLSInCaddy(t *testing.T) {
	leavesNoGoroutine(t)
	dir := t.TempDir()
	certPEM, keyPEM, err := nellissim.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	// Not .crt and .key: caddytest rewrites such paths into its own
	// directory.
	cert, key := filepath.Join(dir, "sim-cert.pem"), filepath.Join(dir, "sim-key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	loadCaddy(t, fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	auto_https disable_redirects
	grace_period 1ns
	storage file_system %[1]s
	nellis {
		sse_endpoint https://127.0.0.1:9443
		api_endpoint https://127.0.0.1:9443
		auth_token %[2]s
		upstream_ca %[3]s
	}
}

https://127.0.0.1:9443 {
	bind 127.0.0.1
	tls %[3]s %[4]s
	nellis_sim {
		seed 7
		auctions 3
	}
}

http://127.0.0.1:9080 {
	bind 127.0.0.1
	nellis_ws /ws {
		allowed_origins %[5]s
	}
}
`, filepath.Join(dir, "storage"), testToken, cert, key, testOrigin))
	tester := caddytest.NewTester(t)
	t.Cleanup(func() { tester.InitServer(noGatewayConfig, "caddyfile") })

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	simClient := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	res, err := simClient.Get("https://127.0.0.1:9443/_sim/auctions")
	if err != nil {
		t.Fatal(err)
	}
	var lots []nellissim.Auction
	err = json.NewDecoder(res.Body).Decode(&lots)
	res.Body.Close()
	if err != nil || len(lots) != 3 || res.ProtoMajor != 2 {
		t.Fatalf("the simulator's site: %d lots over HTTP/%d (%v), want 3 over h2", len(lots), res.ProtoMajor, err)
	}

	lot := lots[0]
	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	ext.monitor(lot.ID)
	ext.next("auctionState", 5*time.Second, priceIs(lot.ID, float64(lot.CurrentBid)))
	// Bids until one comes by the stream: the first may land before the
	// stream is up and come by the reconcile snapshot.
	price := lot.CurrentBid
	for attempt := 1; ; attempt++ {
		price += 5
		body := fmt.Sprintf(`{"productId":%d,"amount":%d,"bidder":"rival-%d"}`, lot.ID, price, attempt)
		res, err := simClient.Post("https://127.0.0.1:9443/_sim/bid", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		m := ext.next("auctionState", 5*time.Second, priceIs(lot.ID, float64(price)))
		if m["auction"].(map[string]any)["source"] == "sse" {
			break
		}
		if attempt == 5 {
			t.Fatalf("5 bids and none came by the stream: %v", m)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
