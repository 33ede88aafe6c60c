package nellissim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestControlAPI(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 21, PingInterval: 5 * time.Millisecond})
	_, _, body := ts.fetch(t, "/_sim/auctions", nil)
	var listed []Auction
	if err := json.Unmarshal(body, &listed); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(listed, ts.Auctions()) {
		t.Errorf("HTTP listing %+v differs from Auctions() %+v", listed, ts.Auctions())
	}
	a := listed[0]
	c := ts.openStream(t, a.ID)
	c.waitFor(t, "\n\n", 1)

	ok := func(path, body string) {
		t.Helper()
		if status, resp := ts.post(t, path, "application/json", body, nil); status != 200 {
			t.Fatalf("%s: %d %s", path, status, resp)
		}
	}
	ok("/_sim/bid", fmt.Sprintf(`{"productId":%d,"amount":%d,"bidder":"zed"}`, a.ID, a.NextBid+3))
	c.waitFor(t, fmt.Sprintf(`"currentBid":%d,`, a.NextBid+3), 1)

	ok("/_sim/wire", `{"priceKey":"currentPrice","numbersAsStrings":true}`)
	ok("/_sim/raw", fmt.Sprintf(`{"productId":%d,"event":"odd","data":"not json"}`, a.ID))
	c.waitFor(t, "event: odd\ndata: not json\n\n", 1)

	ok(fmt.Sprintf("/_sim/stall?productId=%d&on=true", a.ID), "")
	ok(fmt.Sprintf("/_sim/stall?productId=%d&on=false", a.ID), "")
	ok("/_sim/slow-drip?on=false", "")
	ok(fmt.Sprintf("/_sim/fail-streams?productId=%d&n=1&status=500", a.ID), "")
	if status, _, _ := ts.fetch(t, fmt.Sprintf("/live-products?productId=%d", a.ID), nil); status != 500 {
		t.Errorf("armed stream failure answered %d", status)
	}
	ok("/_sim/fail-snapshots?n=1&status=429", "")
	if status, _, _ := ts.fetch(t, fmt.Sprintf("/p/x/%d", a.ID), nil); status != 429 {
		t.Errorf("armed snapshot failure answered %d", status)
	}

	_, _, body = ts.fetch(t, fmt.Sprintf("/_sim/stats?productId=%d", a.ID), nil)
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.StreamRequests != 2 || st.StreamsOpened != 1 || st.StreamsOpen != 1 || st.Snapshots.HTML != 1 {
		t.Errorf("stats %s", body)
	}
	_, _, body = ts.fetch(t, "/_sim/stats", nil)
	var total Stats
	if err := json.Unmarshal(body, &total); err != nil || total.StreamRequests != 2 {
		t.Errorf("total stats %s (%v)", body, err)
	}

	ok(fmt.Sprintf("/_sim/close?productId=%d", a.ID), "")
	c.waitFor(t, "ch_product_closed", 1)
	ok(fmt.Sprintf("/_sim/drop?productId=%d", a.ID), "")
	c.waitEnd(t)
}

func TestControlAPIErrors(t *testing.T) {
	ts := newTestSim(t, Config{})
	a := ts.firstLot(t)
	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/_sim/bid", `{"productId":1,"amount":5,"bidder":"x"}`, 404},
		{"/_sim/bid", fmt.Sprintf(`{"productId":%d,"amount":1,"bidder":"x"}`, a.ID), 400},
		{"/_sim/bid", fmt.Sprintf(`{"productId":%d,"amount":%d,"bidder":""}`, a.ID, a.NextBid), 400},
		{"/_sim/bid", `{"productId":`, 400},
		{"/_sim/bid", `{"productId":1,"unknown":true}`, 400},
		{"/_sim/wire", `{"priceKey":"price"}`, 400},
		{"/_sim/stall?productId=abc&on=true", "", 400},
		{"/_sim/stall?productId=1&on=true", "", 404},
		{"/_sim/stall?on=maybe", "", 400},
		{"/_sim/fail-streams?n=x&status=500", "", 400},
		{"/_sim/fail-streams?n=1&status=42", "", 400},
		{"/_sim/close", "", 400},
		{"/_sim/close?productId=0", "", 400},
		{"/_sim/drop?productId=2", "", 404},
	} {
		status, body := ts.post(t, tc.path, "application/json", tc.body, nil)
		if status != tc.status || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s %s: %d %s, want %d with an error", tc.path, tc.body, status, body, tc.status)
		}
	}
	if _, err := ts.Stats(1); err == nil {
		t.Error("stats of an unknown product")
	}
	if err := ts.Stall(1, true); err == nil {
		t.Error("stalling an unknown product")
	}
	if status, _, _ := ts.fetch(t, "/_sim/bid", nil); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /_sim/bid: %d", status)
	}
}
