package module

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
)

// use_sse takes on, off or a share of lots, in the Caddyfile and in JSON;
// on and off keep their JSON true and false.
func TestUseSSECanarySetting(t *testing.T) {
	for src, want := range map[string]struct {
		percent float64
		json    string
	}{
		"on": {100, "true"}, "off": {0, "false"}, "5%": {5, `"5%"`}, "0.25%": {0.25, `"0.25%"`},
		"100%": {100, "true"}, "0%": {0, "false"},
	} {
		cfg, err := adapt(t, "{\n\tnellis {\n\t\tuse_sse "+src+"\n\t\tauth_token x\n\t}\n}\n")
		if err != nil {
			t.Fatalf("use_sse %s: %v", src, err)
		}
		app := nellisJSON(t, cfg)
		if got := app.ssePercent(); got != want.percent {
			t.Errorf("use_sse %s: %v%%, want %v%%", src, got, want.percent)
		}
		h := app.hubConfig()
		if h.UseSSE != (want.percent > 0) || (h.UseSSE && h.SSEPercent != want.percent) {
			t.Errorf("use_sse %s: hub config use_sse %v at %v%%", src, h.UseSSE, h.SSEPercent)
		}
		raw, _ := json.Marshal(app.UseSSE)
		if string(raw) != want.json {
			t.Errorf("use_sse %s: JSON %s, want %s", src, raw, want.json)
		}
	}
	for raw, want := range map[string]float64{`true`: 100, `false`: 0, `"5%"`: 5, `"on"`: 100} {
		var s SSEShare
		if err := json.Unmarshal([]byte(raw), &s); err != nil || float64(s) != want {
			t.Errorf("JSON %s: %v %v, want %v", raw, s, err, want)
		}
	}
	for _, raw := range []string{`5`, `"5"`, `"-1%"`, `"lots"`} {
		var s SSEShare
		if err := json.Unmarshal([]byte(raw), &s); err == nil {
			t.Errorf("JSON %s accepted as %v", raw, s)
		}
	}
}

// A reload from `use_sse 5%` to `use_sse on` opens a stream for a lot that
// was polled, and the client watching it stays connected throughout.
func TestUseSSECanaryReloadKeepsClients(t *testing.T) {
	sim, simURL := serveSeededSimulator(t, 5005, httptest.NewServer)
	storage := t.TempDir()
	loadCaddy(t, gatewayConfig(simURL, storage, "use_sse 5%\n\t\tpoll_interval 300ms"))

	var id int64
	var price int
	for _, a := range sim.Auctions() {
		if !hub.InSSEShare(a.ID, 5) {
			id, price = a.ID, a.CurrentBid
			break
		}
	}
	if id == 0 {
		t.Fatal("every simulated lot is in the 5% share: pick another seed")
	}
	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	ext.monitor(id)
	ext.next("auctionState", 5*time.Second, priceIs(id, float64(price)))
	price += 2
	if err := sim.EmitBid(id, price, "rival-1"); err != nil {
		t.Fatal(err)
	}
	ext.next("auctionState", 3*time.Second, priceIs(id, float64(price)))
	if st := streams(t, sim, id); st.StreamsOpened != 0 {
		t.Fatalf("a lot outside the 5%% share opened streams: %+v", st)
	}

	loadCaddy(t, gatewayConfig(simURL, storage, "use_sse on\n\t\tpoll_interval 300ms"))
	eventually(t, 3*time.Second, "the lot's stream after use_sse on", func() bool { return streams(t, sim, id).StreamsOpen == 1 })
	price += 3
	if err := sim.EmitBid(id, price, "rival-2"); err != nil {
		t.Fatal(err)
	}
	ext.next("auctionState", 3*time.Second, priceIs(id, float64(price)))
}
