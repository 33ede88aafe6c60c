package nellissim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

const dataQuery = "?_data=routes/p.$title.$productId._index"

func TestJSONSnapshot(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 1})
	a := ts.firstLot(t)
	if err := ts.EmitBid(a.ID, a.NextBid+4, "alice"); err != nil {
		t.Fatal(err)
	}
	status, ctype, body := ts.fetch(t, fmt.Sprintf("/p/anything/%d%s", a.ID, dataQuery), userCookieFor("alice"))
	if status != http.StatusOK || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("status %d, type %q, want 200 application/json", status, ctype)
	}
	var snap struct {
		Product struct {
			ID           int64   `json:"id"`
			Title        string  `json:"title"`
			CurrentPrice int     `json:"currentPrice"`
			RetailPrice  float64 `json:"retailPrice"`
			BidCount     int     `json:"bidCount"`
			MarketStatus string  `json:"marketStatus"`
			IsClosed     bool    `json:"isClosed"`
			CloseTime    struct {
				Type  string `json:"__type"`
				Value string `json:"value"`
			} `json:"closeTime"`
			ExtensionInterval int `json:"extensionInterval"`
			Location          struct {
				Name string `json:"name"`
			} `json:"location"`
			Photos    []struct{ URL string } `json:"photos"`
			UserState struct {
				IsWinning bool `json:"isWinning"`
				NextBid   int  `json:"nextBid"`
			} `json:"userState"`
		} `json:"product"`
		BidHistory []struct {
			Name   string `json:"name"`
			Amount string `json:"amount"`
			Type   string `json:"type"`
		} `json:"bidHistory"`
	}
	if err := json.Unmarshal(body, &snap); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	p := snap.Product
	a = ts.auction(t, a.ID)
	if p.ID != a.ID || p.Title != a.Title || p.CurrentPrice != a.CurrentBid || p.BidCount != a.BidCount ||
		p.MarketStatus != "open" || p.IsClosed || p.ExtensionInterval != 30 || p.Location.Name == "" || len(p.Photos) == 0 {
		t.Errorf("product %+v does not match auction %+v", p, a)
	}
	if p.CloseTime.Type != "Date" || p.CloseTime.Value != isoTime(a.CloseTime) {
		t.Errorf("closeTime %+v, want a Date of %s", p.CloseTime, isoTime(a.CloseTime))
	}
	if !p.UserState.IsWinning || p.UserState.NextBid != a.CurrentBid+1 {
		t.Errorf("alice's userState %+v, want winning with next bid %d", p.UserState, a.CurrentBid+1)
	}
	if len(snap.BidHistory) == 0 || snap.BidHistory[0].Type != "Winning" ||
		snap.BidHistory[0].Name != "a***e" || snap.BidHistory[0].Amount != fmt.Sprintf("$%d.00", a.CurrentBid) {
		t.Errorf("bid history %+v, want alice's winning bid first", snap.BidHistory)
	}

	// Someone else sees alice's lead as not theirs.
	_, _, body = ts.fetch(t, fmt.Sprintf("/p/x/%d%s", a.ID, dataQuery), userCookieFor("bob"))
	if !strings.Contains(string(body), `"isWinning":false`) {
		t.Errorf("bob is shown winning: %s", body)
	}
}

func TestDataSnapshotDecodes(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 2, SnapshotFormat: SnapshotData})
	a := ts.firstLot(t)
	status, ctype, body := ts.fetch(t, fmt.Sprintf("/p/x/%d.data?_routes=routes%%2Fp.%%24title.%%24productId._index", a.ID), nil)
	if status != http.StatusOK || ctype != "text/x-script" {
		t.Fatalf("status %d, type %q, want 200 text/x-script", status, ctype)
	}
	v, err := decodeTurboStream(string(body))
	if err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	p := dig(t, v, productRoute, "data", "product").(map[string]any)
	if p["id"] != float64(a.ID) || p["title"] != a.Title || p["currentPrice"] != float64(a.CurrentBid) ||
		p["closeTime"] != isoTime(a.CloseTime) || p["marketStatus"] != "open" {
		t.Errorf("decoded product %v does not match %+v", p, a)
	}
}

func TestHTMLSnapshotCarriesTurboStream(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 3, SnapshotFormat: SnapshotHTML})
	a := ts.firstLot(t)
	// A title that would end the script, and that the page must escape.
	const nasty = `Desk (width 22"-36") & <chair></script>`
	ts.mu.Lock()
	ts.byID[a.ID].title = nasty
	ts.mu.Unlock()

	status, ctype, body := ts.fetch(t, fmt.Sprintf("/p/x/%d", a.ID), userCookieFor("carol"))
	if status != http.StatusOK || !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("status %d, type %q", status, ctype)
	}
	if strings.Contains(string(body), "<chair>") {
		t.Error("the title's markup reached the page unescaped")
	}
	chunks := enqueuedChunks(t, string(body))
	if len(chunks) != 2 {
		t.Fatalf("%d enqueue calls, want 2", len(chunks))
	}
	v, err := decodeTurboStream(strings.Join(chunks, ""))
	if err != nil {
		t.Fatal(err)
	}
	route := dig(t, v, "loaderData", productRoute).(map[string]any)
	p := route["product"].(map[string]any)
	if p["title"] != nasty || p["id"] != float64(a.ID) {
		t.Errorf("product %v, want id %d titled %q", p, a.ID, nasty)
	}
	if related, ok := route["related"].([]any); !ok || len(related) == 0 {
		t.Errorf("related (the streamed promise) = %v, want other lots", route["related"])
	}
	if dig(t, v, "loaderData", "root", "user", "name") != "carol" {
		t.Error("root loader does not name the cookie's user")
	}
}

// enqueuedChunks reads each enqueue("…") argument with a JSON decoder.
func enqueuedChunks(t *testing.T, page string) []string {
	t.Helper()
	const call = "streamController.enqueue("
	var out []string
	for rest := page; ; {
		i := strings.Index(rest, call)
		if i < 0 {
			return out
		}
		rest = rest[i+len(call):]
		dec := json.NewDecoder(strings.NewReader(rest))
		var s string
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("enqueue argument: %v", err)
		}
		out = append(out, s)
		rest = rest[dec.InputOffset():]
	}
}

func dig(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("at %q: %T is not an object", k, v)
		}
		v = m[k]
	}
	return v
}

func TestSnapshotFormatsAnswerAsTheSiteDid(t *testing.T) {
	type want struct {
		status int
		empty  bool
	}
	cases := map[string]map[string]want{
		SnapshotJSON: {"json": {200, false}, "data": {200, false}, "html": {200, false}},
		SnapshotData: {"json": {200, true}, "data": {200, false}, "html": {404, false}},
		SnapshotHTML: {"json": {200, true}, "data": {404, false}, "html": {200, false}},
	}
	for format, routes := range cases {
		t.Run(format, func(t *testing.T) {
			ts := newTestSim(t, Config{SnapshotFormat: format})
			id := ts.firstLot(t).ID
			paths := map[string]string{
				"json": fmt.Sprintf("/p/x/%d%s", id, dataQuery),
				"data": fmt.Sprintf("/p/x/%d.data", id),
				"html": fmt.Sprintf("/p/x/%d", id),
			}
			for route, w := range routes {
				status, _, body := ts.fetch(t, paths[route], nil)
				if status != w.status || (len(body) == 0) != w.empty {
					t.Errorf("%s: status %d with %d bytes, want %d (empty %v)", route, status, len(body), w.status, w.empty)
				}
			}
			st, err := ts.Stats(id)
			if err != nil {
				t.Fatal(err)
			}
			if st.Snapshots != (SnapshotCounts{JSON: 1, Data: 1, HTML: 1}) {
				t.Errorf("snapshot counts %+v, want one of each", st.Snapshots)
			}
		})
	}
}

func TestSnapshotErrors(t *testing.T) {
	ts := newTestSim(t, Config{})
	id := ts.firstLot(t).ID

	status, ctype, body := ts.fetch(t, "/p/x/1.data", nil)
	if status != http.StatusNotFound || ctype != "text/x-script" {
		t.Errorf("unknown product .data: %d %q", status, ctype)
	} else if v, err := decodeTurboStream(string(body)); err != nil || dig(t, v, productRoute, "error", "status") != 404.0 {
		t.Errorf("unknown product .data body %s (%v), want an ErrorResponse 404", body, err)
	}
	for _, path := range []string{"/p/x/1" + dataQuery, "/p/x/1", "/p/x/notanumber"} {
		if status, _, _ := ts.fetch(t, path, nil); status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, status)
		}
	}

	if err := ts.FailSnapshots(id, 2, http.StatusBadGateway); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/p/x/%d%s", id, dataQuery)
	for i, want := range []int{502, 502, 200} {
		if status, _, _ := ts.fetch(t, path, nil); status != want {
			t.Errorf("request %d: status %d, want %d", i+1, status, want)
		}
	}
	if err := ts.FailSnapshots(0, 1, http.StatusServiceUnavailable); err != nil {
		t.Fatal(err)
	}
	other := ts.Auctions()[1].ID
	for i, want := range []int{503, 200} {
		if status, _, _ := ts.fetch(t, fmt.Sprintf("/p/x/%d", other), nil); status != want {
			t.Errorf("all-products failure, request %d: status %d, want %d", i+1, status, want)
		}
	}
}
