package wsrelay

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/nellis"
)

// newKeys are the fields this gateway adds to the predecessor's messages;
// the extension ignores them.
var newKeys = map[string]bool{
	"requestId": true, // the predecessor forgot it on bidResult
	// auctionState: the panel fields at the top level, and the change's origin
	"currentBid": true, "nextBid": true, "timeRemaining": true, "bidderCount": true, "isClosed": true,
	"seq": true, "epoch": true, "source": true, "receivedAt": true,
	// the user's auto-bid state, and why auto-bidding stopped
	"autoBid": true, "error": true, "message": true,
}

// sameShape reports how got differs from want: every key of want must be in
// got with a value of the same JSON type (null in want matches anything), and
// got may add only newKeys (and anything inside data, the product). Objects are compared recursively; arrays by their
// first element.
func sameShape(path string, want, got any) []string {
	if want == nil {
		return nil
	}
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
		return []string{fmt.Sprintf("%s: got %T %v, want %T", path, got, got, want)}
	}
	var diffs []string
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, path+"."+k+": missing")
				continue
			}
			diffs = append(diffs, sameShape(path+"."+k, wv, gv)...)
		}
		for k := range g {
			if _, ok := w[k]; !ok && !newKeys[k] && !strings.Contains(path, ".data") {
				diffs = append(diffs, path+"."+k+": unexpected")
			}
		}
	case []any:
		g := got.([]any)
		if len(w) > 0 && len(g) > 0 {
			diffs = append(diffs, sameShape(path+"[0]", w[0], g[0])...)
		}
	}
	return diffs
}

func decodeSample(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(sample(t, name), &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func checkShape(t *testing.T, sampleName string, got map[string]any) {
	t.Helper()
	if diffs := sameShape("$", decodeSample(t, sampleName), got); len(diffs) > 0 {
		slices.Sort(diffs)
		t.Errorf("reply differs from %s:\n  %s\ngot %v", sampleName, strings.Join(diffs, "\n  "), got)
	}
}

// TestConformance replays every client message sample, in the order the
// extension sends them, and checks each reply against the server samples.
func TestConformance(t *testing.T) {
	f := newFixture(t, Config{Users: map[string]string{"default": "dev-token"}}, Options{})

	// The product as the after-poll sample carries it, published by the feed.
	var state struct {
		Auction struct {
			Data json.RawMessage `json:"data"`
		} `json:"auction"`
	}
	if err := json.Unmarshal(sample(t, "ws_s2c_auctionState.after-poll.json"), &state); err != nil {
		t.Fatal(err)
	}
	var p nellis.Product
	if err := json.Unmarshal(state.Auction.Data, &p); err != nil {
		t.Fatal(err)
	}
	p.CloseTime = time.Now().Add(time.Hour)
	f.feeds.publish(newChange(t, p, "e1", 1))

	c := f.dial(nil)
	connected := c.expectType("connected")
	checkShape(t, "ws_s2c_connected.json", connected)
	if id, _ := connected["clientId"].(string); !regexp.MustCompile(`^client_\d{13}_[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("clientId %q", id)
	}
	if connected["message"] != connectedMessage {
		t.Errorf("message %v", connected["message"])
	}
	checkShape(t, "ws_s2c_monitoredAuctions.json", c.expectType("monitoredAuctions"))

	// Before authenticating: errors and empty lists.
	c.sendRaw(`{"type":"startMonitoring","auctionId":"58040119","requestId":"req_2"}`)
	m := c.expectType("error")
	checkShape(t, "ws_s2c_error.json", m)
	c.sendRaw(`not json`)
	checkShape(t, "ws_s2c_error.invalid-format.json", c.expectType("error"))
	c.sendRaw(`{"type":"authenticate","token":"wrong","requestId":"req_1"}`)
	checkShape(t, "ws_s2c_authenticated.failure.json", c.expectType("authenticated"))

	replies := map[string][]string{
		"ws_c2s_getMonitoredAuctions.json":      {"ws_s2c_response.getMonitoredAuctions.json"},
		"ws_c2s_authenticate.json":              {"ws_s2c_authenticated.success.json", "ws_s2c_monitoredAuctions.json"},
		"ws_c2s_startMonitoring.extension.json": {"ws_s2c_response.startMonitoring.json", "ws_s2c_auctionState.after-poll.json"},
		"ws_c2s_updateConfig.json":              {"ws_s2c_response.updateConfig.json", "ws_s2c_auctionState.after-poll.json"},
		"ws_c2s_placeBid.json":                  {"ws_s2c_bidResult.failure.json"},
		"ws_c2s_subscribe.json":                 {"ws_s2c_auctionUpdate.on-subscribe.json"},
		"ws_c2s_unsubscribe.json":               {},
		"ws_c2s_ping.json":                      {"ws_s2c_pong.json"},
		"ws_c2s_stopMonitoring.json":            {"ws_s2c_response.stopMonitoring.json"},
	}
	order := []string{
		"ws_c2s_getMonitoredAuctions.json", "ws_c2s_authenticate.json", "ws_c2s_startMonitoring.extension.json",
		"ws_c2s_updateConfig.json", "ws_c2s_placeBid.json", "ws_c2s_subscribe.json", "ws_c2s_unsubscribe.json",
		"ws_c2s_ping.json", "ws_c2s_stopMonitoring.json",
	}
	all, err := filepath.Glob(filepath.Join("testdata", "samples", "ws_c2s_*.json"))
	if err != nil || len(all) != len(order) {
		t.Fatalf("samples %v (%v): the conformance table must cover every ws_c2s sample", all, err)
	}
	for _, path := range all {
		if _, ok := replies[filepath.Base(path)]; !ok {
			t.Fatalf("no expected reply for %s", path)
		}
	}
	for _, name := range order {
		request := sample(t, name)
		var req map[string]any
		_ = json.Unmarshal(request, &req)
		c.sendRaw(string(request))
		for _, want := range replies[name] {
			got := c.read()
			checkShape(t, want, got)
			// A reply to a request echoes its requestId; a push never has one.
			if got["type"] == "auctionState" || got["type"] == "monitoredAuctions" {
				if _, has := got["requestId"]; has {
					t.Errorf("%s: push %v carries a requestId", name, got["type"])
				}
			} else if got["requestId"] != req["requestId"] {
				t.Errorf("%s: requestId %v, want %v", name, got["requestId"], req["requestId"])
			}
		}
		if name == "ws_c2s_unsubscribe.json" {
			c.roundTrip() // nothing was sent before the pong
		}
	}
}

// TestAuctionStatePanelFields checks the values, not just the shape, of an
// auctionState: the panel fields at the top level, timeRemaining computed
// from closeTime, and the change's seq, epoch and source.
func TestAuctionStatePanelFields(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	c := f.login(tokenAlice)
	c.send(map[string]any{"type": "startMonitoring", "auctionId": "7", "requestId": "r1",
		"config": map[string]any{"maxBid": 45, "strategy": "increment"}, "metadata": map[string]any{"title": strings.Repeat("long title ", 50), "url": "https://www.nellisauction.com/p/x/7"}})
	c.expectType("response")
	if m := c.expectType("auctionState"); m["auction"].(map[string]any)["data"] != nil {
		t.Fatalf("state before any change: %v", m)
	}
	p := product(7, 30)
	p.CloseTime = time.Now().Add(90 * time.Second)
	f.feeds.publish(newChange(t, p, "ep", 4))
	a := c.expectType("auctionState")["auction"].(map[string]any)
	data := a["data"].(map[string]any)
	for _, k := range []string{"currentBid", "nextBid", "bidderCount", "isClosed"} {
		if a[k] != data[k] {
			t.Errorf("%s: top level %v, data %v", k, a[k], data[k])
		}
	}
	if tr := a["timeRemaining"].(float64); tr < 85 || tr > 90 || data["timeRemaining"] != a["timeRemaining"] {
		t.Errorf("timeRemaining %v (data %v), want ~90", tr, data["timeRemaining"])
	}
	if a["seq"] != 4.0 || a["epoch"] != "ep" || a["source"] != "sse" || a["status"] != "monitoring" {
		t.Errorf("auction %v", a)
	}
	if cfg := a["config"].(map[string]any); cfg["strategy"] != "increment" || cfg["maxBid"] != 45.0 {
		t.Errorf("config %v: an older strategy must be kept as sent", cfg)
	}
	p.IsClosed = true
	f.feeds.publish(newChange(t, p, "ep", 5))
	if a := c.expectType("auctionState")["auction"].(map[string]any); a["status"] != "ended" || a["timeRemaining"] != 0.0 {
		t.Errorf("closed lot: %v", a)
	}
}
