package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	tlsToken  = "e2e-token"
	tlsSimURL = "http://127.0.0.1:9083"
	tlsSite   = "localhost:8443"
)

// tlsConfig serves the gateway and the demo page over HTTPS with Caddy's
// internal CA, following a simulator on :9083; origins lists the browser
// origins nellis_ws accepts.
func tlsConfig(t *testing.T, origins ...string) string {
	t.Helper()
	pages, err := filepath.Abs(filepath.Join("..", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{
	admin localhost:%d
	storage file_system %s
	skip_install_trust
	auto_https disable_redirects
	https_port 8443
	grace_period 1ns
	nellis {
		sse_endpoint %[3]s
		api_endpoint %[3]s
		auth_token %[4]s
		poll_rate 50
	}
}

http://:9083 {
	bind 127.0.0.1
	nellis_sim {
		seed 11
		auctions 3
		auction_length 1h
	}
}

https://%[5]s {
	bind 127.0.0.1
	tls internal
	nellis_ws /ws {
		allowed_origins %[6]s
	}
	nellis_api /api/*
	reverse_proxy /_sim/* 127.0.0.1:9083
	root * %[7]s
	file_server
}
`, demoAdminPort, t.TempDir(), tlsSimURL, tlsToken, tlsSite, strings.Join(origins, " "), pages)
}

// serverSPKI pins the gateway's certificate for Chromium: the base64
// SHA-256 of its public key, as --ignore-certificate-errors-spki-list
// wants. Caddy's internal CA may take a moment to issue it.
func serverSPKI(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := tls.Dial("tcp", "127.0.0.1:8443", &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
		if err == nil {
			cert := conn.ConnectionState().PeerCertificates[0]
			conn.Close()
			sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
			return base64.StdEncoding.EncodeToString(sum[:])
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS certificate on %s: %v", tlsSite, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// firstOpenLot asks the simulator at simURL for a lot still open.
func firstOpenLot(t *testing.T, simURL string) (id int64, price int) {
	t.Helper()
	lots := simOpenLots(t, simURL)
	return lots[0].ID, lots[0].CurrentBid
}

// simLot is a lot as the simulator lists it.
type simLot struct {
	ID         int64 `json:"id"`
	CurrentBid int   `json:"currentBid"`
	IsClosed   bool  `json:"isClosed"`
}

// simOpenLots are the open lots of the simulator at simURL, in its order;
// the test fails when there is none.
func simOpenLots(t *testing.T, simURL string) []simLot {
	t.Helper()
	res, err := http.Get(simURL + "/_sim/auctions")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var lots []simLot
	if err := json.NewDecoder(res.Body).Decode(&lots); err != nil {
		t.Fatal(err)
	}
	open := lots[:0]
	for _, l := range lots {
		if !l.IsClosed {
			open = append(open, l)
		}
	}
	if len(open) == 0 {
		t.Fatal("no open lot in the simulator")
	}
	return open
}

// TestPageOverTLS: a page served over HTTPS opens wss://…/ws with the
// browser's own WebSocket, authenticates, monitors, and sees a bid arrive.
func TestPageOverTLS(t *testing.T) {
	loadConfig(t, tlsConfig(t, "https://"+tlsSite), "8443/9083")
	spki := serverSPKI(t)
	ctx := newBrowser(t, chromedp.Flag("ignore-certificate-errors-spki-list", spki))
	step, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()

	if err := chromedp.Do(step,
		chromedp.Navigate("https://"+tlsSite+"/?token="+tlsToken+"&lots=3"),
		chromedp.WaitVisible(`.conn[data-state="live"]`),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll(".lot[data-id]").length >= 1`),
	); err != nil {
		screenshot(t, ctx, "tls-failed")
		t.Fatalf("the page over TLS never went live: %v", err)
	}
	id, price := firstOpenLot(t, tlsSimURL)
	sel := fmt.Sprintf(`.lot[data-id="%d"] .price`, id)
	if err := chromedp.Do(step, chromedp.Poll[chromedp.Void](fmt.Sprintf(`(document.querySelector('%s') || {}).textContent === "$%d"`, sel, price))); err != nil {
		t.Fatalf("lot %d never showed its price $%d: %v", id, price, err)
	}
	simulateBid(t, tlsSimURL, id, price+9)
	if err := chromedp.Do(step, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('%s').textContent === "$%d"`, sel, price+9))); err != nil {
		t.Fatalf("the bid never reached the page over wss: %v", err)
	}
	screenshot(t, ctx, "tls")
}

// extensionID is the id Chromium gives an unpacked extension: derived
// from the absolute path it is loaded from.
func extensionID(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	hexed := hex.EncodeToString(sum[:16])
	id := make([]byte, len(hexed))
	for i, c := range hexed {
		if c >= 'a' {
			id[i] = byte('a' + 10 + (c - 'a'))
		} else {
			id[i] = byte('a' + (c - '0'))
		}
	}
	return string(id)
}

// probeExtension copies the test extension into a fresh folder (its id
// follows the folder) with a config pointing it at the gateway.
func probeExtension(t *testing.T, lot int64) (dir, id string) {
	t.Helper()
	dir = profileDir(t)
	src := filepath.Join("testdata", "extension")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf("const GATEWAY_WS = %q;\nconst TOKEN = %q;\nconst LOT = %d;\n", "wss://"+tlsSite+"/ws", tlsToken, lot)
	if err := os.WriteFile(filepath.Join(dir, "config.js"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, extensionID(dir)
}

// probeStatus opens the extension's status page and returns what its
// service worker recorded.
func probeStatus(t *testing.T, ctx context.Context, id string) map[string]any {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(step, chromedp.Navigate("chrome-extension://"+id+"/status.html"),
		chromedp.Poll[chromedp.Void](`document.getElementById("status").textContent.length > 2`)); err != nil {
		t.Fatalf("extension %s status page: %v", id, err)
	}
	text, err := chromedp.Run(step, chromedp.Text("#status"))
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(text), &st); err != nil {
		t.Fatalf("extension %s status %q: %v", id, text, err)
	}
	return st
}

// connections asks the gateway how many sockets the token's user holds.
func connections(t *testing.T) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "https://"+tlsSite+"/api/status", nil)
	req.Header.Set("Authorization", tlsToken)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st struct {
		Connections int `json:"connections"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Connections
}

// TestExtensionServiceWorker loads a tiny MV3 extension, so the socket's
// origin is a real chrome-extension://<id>: an allowed id connects over
// wss and its service worker stays connected, with no page open, for over
// a minute (the gateway's heartbeats keep it alive); an extension whose id
// is not allowed is refused.
func TestExtensionServiceWorker(t *testing.T) {
	// The simulator comes up with the config; load once to find a lot.
	loadConfig(t, tlsConfig(t, "https://"+tlsSite), "8443/9083")
	lot, price := firstOpenLot(t, tlsSimURL)
	allowedDir, allowed := probeExtension(t, lot)
	otherDir, other := probeExtension(t, lot)
	loadConfig(t, tlsConfig(t, "chrome-extension://"+allowed), "8443/9083")
	spki := serverSPKI(t)

	ctx := newBrowser(t,
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.Flag("load-extension", allowedDir+","+otherDir),
		chromedp.Flag("disable-extensions-except", allowedDir+","+otherDir),
	)
	waitUntil(t, 20*time.Second, "the allowed extension to connect", func() bool { return connections(t) == 1 })

	// No page of the extension is open: only its service worker runs.
	held := time.Now()
	for time.Since(held) < 65*time.Second {
		if n := connections(t); n != 1 {
			t.Fatalf("after %v the gateway holds %d sockets for the user, want the extension's one", time.Since(held).Round(time.Second), n)
		}
		time.Sleep(5 * time.Second)
	}

	simulateBid(t, tlsSimURL, lot, price+11)
	waitUntil(t, 10*time.Second, "the bid to reach the service worker", func() bool {
		st := probeStatus(t, ctx, allowed)
		return st["price"] == float64(price+11)
	})
	st := probeStatus(t, ctx, allowed)
	if st["opened"] != 1.0 || st["closed"] != nil && st["closed"] != 0.0 {
		t.Errorf("the allowed extension reconnected during the minute: %v", st)
	}
	if st["heartbeat"] == nil {
		t.Errorf("the service worker never saw a heartbeat: %v", st)
	}

	refused := probeStatus(t, ctx, other)
	if refused["opened"] != nil && refused["opened"] != 0.0 {
		t.Errorf("extension %s (not allowed) connected: %v", other, refused)
	}
	if refused["closed"] == nil {
		t.Errorf("extension %s (not allowed) never tried to connect: %v", other, refused)
	}
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
