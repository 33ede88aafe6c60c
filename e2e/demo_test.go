package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/chromedp/chromedp"

	_ "github.com/nellis-edge/gateway"
)

// demoAdminPort keeps this package's Caddy apart from package module's,
// whose tests may run at the same time.
const demoAdminPort = 2998

// demoConfig is Caddyfile.demo as `make demo` runs it, with the admin
// endpoint moved for the test, its storage in a temporary folder and the
// page served from the repository's demo folder.
func demoConfig(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "Caddyfile.demo"))
	if err != nil {
		t.Fatal(err)
	}
	pages, err := filepath.Abs(filepath.Join("..", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for old, repl := range map[string]string{
		"admin localhost:2019": fmt.Sprintf("admin localhost:%d\n\tstorage file_system %s", demoAdminPort, t.TempDir()),
		"root * demo":          "root * " + pages,
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("Caddyfile.demo no longer contains %q", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	return cfg
}

// loadConfig loads cfg into the package's Caddy. caddytest skips what it
// cannot run; here that is a failure, and ports names the ones that must
// be free.
func loadConfig(t *testing.T, cfg, ports string) {
	t.Helper()
	loaded := false
	t.Run("load config", func(st *testing.T) {
		caddytest.NewTester(st).WithDefaultOverrides(caddytest.Config{AdminPort: demoAdminPort}).InitServer(cfg, "caddyfile")
		loaded = !st.Failed()
	})
	if !loaded {
		t.Fatalf("caddytest could not load the config (is another process using admin port %d or ports %s?)", demoAdminPort, ports)
	}
	t.Cleanup(func() { unloadGateway(t) })
}

// unloadGateway loads a Caddy without the nellis app, which stops the
// gateway as a shutdown would. The hub outlives reloads by design, so
// without this the next test would inherit this one's lingering feeds,
// still following a simulator that is gone (404s, an open breaker, a
// stream 10 s away), and wait on them.
func unloadGateway(t *testing.T) {
	cfg := fmt.Sprintf(`{"admin":{"listen":"localhost:%d"}}`, demoAdminPort)
	res, err := http.Post(fmt.Sprintf("http://localhost:%d/load", demoAdminPort), "application/json", strings.NewReader(cfg))
	if err != nil {
		t.Errorf("stopping the gateway: %v", err)
		return
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		t.Errorf("stopping the gateway: %s: %s", res.Status, body)
	}
}

// simulateBid makes a rival bid amount on lot id through the simulator at
// simURL.
func simulateBid(t *testing.T, simURL string, id int64, amount int) {
	t.Helper()
	body := fmt.Sprintf(`{"productId":%d,"amount":%d,"bidder":"e2e-rival-%d"}`, id, amount, amount)
	res, err := http.Post(simURL+"/_sim/bid", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("simulated bid: %s", res.Status)
	}
}

// TestDemoPageShowsLivePrices opens the demo in Chromium, as a newcomer
// does after `make demo`, and checks that it shows the simulated lots'
// prices and that a new bid moves one on screen.
func TestDemoPageShowsLivePrices(t *testing.T) {
	loadConfig(t, demoConfig(t), "8080/9081")

	ctx := newBrowser(t)
	step, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	const pricedLots = `Array.from(document.querySelectorAll(".lot .price")).filter(e => e.textContent.startsWith("$")).length`
	err := chromedp.Do(step,
		chromedp.Navigate("http://localhost:8080/"),
		chromedp.WaitVisible(`.conn[data-state="live"]`),
		chromedp.Poll[chromedp.Void](pricedLots+` >= 3`),
	)
	if err != nil {
		screenshot(t, ctx, "demo-failed")
		t.Fatalf("the demo page never showed prices: %v", err)
	}
	priced, err := chromedp.Run(step, chromedp.Evaluate[int](pricedLots))
	if err != nil {
		t.Fatal(err)
	}
	// Only a cluster node names itself (make demo-cluster's /_node).
	if named, err := chromedp.Run(step, chromedp.Evaluate[bool](`!document.getElementById("node").hidden`)); err != nil || named {
		t.Errorf("the single gateway's page names a node (%v)", err)
	}
	first, err := chromedp.Run(step, chromedp.AttributeValue(`.lot[data-id]`, "data-id"))
	if err != nil {
		t.Fatal(err)
	}
	id := first.Value
	lot, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatalf("lot id on screen %q: %v", id, err)
	}
	shown, err := chromedp.Run(step, chromedp.Text(fmt.Sprintf(`.lot[data-id="%s"] .price`, id)))
	if err != nil {
		t.Fatal(err)
	}
	price, err := strconv.Atoi(strings.ReplaceAll(strings.TrimPrefix(shown, "$"), ",", ""))
	if err != nil {
		t.Fatalf("price on screen %q: %v", shown, err)
	}

	// A rival bids through the simulator once the lot's stream is open
	// there: a bid before that is the stream's connect snapshot's to bring
	// (source reconcile), and no stream event ever follows it.
	waitUntil(t, 10*time.Second, "the lot's stream open at the simulator", func() bool {
		open, _ := simLotStreams(t, "http://127.0.0.1:9081", lot)
		return open > 0
	})
	next := price + 25
	simulateBid(t, "http://127.0.0.1:9081", lot, next)
	want := fmt.Sprintf("$%d", next)
	sel := fmt.Sprintf(`.lot[data-id="%s"]`, id)
	err = chromedp.Do(step, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('%s .price').textContent === %q`, sel, want)))
	screenshot(t, ctx, "demo")
	if err != nil {
		t.Fatalf("the page never showed %s for lot %s: %v", want, id, err)
	}
	// The bid's stream event names its source. A snapshot that healed a
	// stream's reconnect may show the price a moment before the event,
	// which then follows with the bidder: wait for it.
	err = chromedp.Do(step, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('%s .source').textContent === "sse"`, sel)))
	if err != nil {
		source, _ := chromedp.Run(step, chromedp.Text(sel+" .source"))
		t.Errorf("lot %s shows source %q after a live bid, want sse: %v", id, source, err)
	}
	t.Logf("%d lots priced; lot %s moved %s -> %s", priced, id, shown, want)

	// A second visit finds the user already monitoring these lots: the
	// list that follows authentication must draw them at once.
	revisit, cancelRevisit := context.WithTimeout(ctx, 20*time.Second)
	defer cancelRevisit()
	if err := chromedp.Do(revisit,
		chromedp.Navigate("http://localhost:8080/"),
		chromedp.WaitVisible(`.conn[data-state="live"]`),
		chromedp.Poll[chromedp.Void](pricedLots+` >= 3`),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('%s .price').textContent === %q`, sel, want)),
	); err != nil {
		screenshot(t, ctx, "demo-revisit-failed")
		t.Fatalf("a second visit never showed the prices: %v", err)
	}
}
