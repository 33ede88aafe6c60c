package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/nellissim"
)

// lotsGateway answers every request and pushes each scheduled change of a
// product the socket monitors, as the simulator emits it: product 7's by
// SSE, 9's by poll until the lot closes at closeAt (only the even events:
// a poll brings the latest price, and the one before it is superseded),
// none of 11's (a lot the gateway never refreshed); lot 9's close then
// repeats its last price.
type lotsGateway struct {
	closeAt time.Time
	until   time.Time
	sched   chan nellissim.Schedule
	// promoted, when set, sends lot 11's changes too: by poll until
	// event promoteAt, by SSE from it on (a polled lot given a stream).
	promoted  bool
	promoteAt int64
}

func (g *lotsGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	var mu, wmu sync.Mutex
	monitored := map[string]bool{}
	// The reader answers until the load generator closes the socket; the
	// handler holds the socket until then.
	read := make(chan struct{})
	defer func() { <-read }()
	go func() {
		defer close(read)
		var msg struct{ Type, AuctionID, RequestID string }
		for conn.ReadJSON(&msg) == nil {
			reply := fmt.Sprintf(`{"type":"response","success":true,"requestId":%q}`, msg.RequestID)
			if msg.Type == "startMonitoring" {
				mu.Lock()
				monitored[msg.AuctionID] = true
				mu.Unlock()
			}
			wmu.Lock()
			_ = conn.WriteMessage(websocket.TextMessage, []byte(reply))
			wmu.Unlock()
		}
	}()
	sc := <-g.sched
	lastPrice9, closed9 := 0, false
	for k := int64(0); sc.At(k).Before(g.until); k++ { // seq k+1: increasing for each lot
		time.Sleep(time.Until(sc.At(k)))
		id, price := sc.Event(k)
		source := map[int64]string{7: "sse", 9: "poll"}[id]
		if id == 11 && g.promoted {
			source = "poll"
			if k >= g.promoteAt {
				source = "sse"
			}
		}
		mu.Lock()
		watching := monitored[fmt.Sprint(id)]
		mu.Unlock()
		if watching && id == 9 && !sc.At(k).Before(g.closeAt) && !closed9 {
			// The close repeats the last price the client has.
			closed9 = true
			wmu.Lock()
			_ = conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil,
				`{"type":"auctionState","auction":{"id":"9","data":{"currentBid":1},"currentBid":%d,"isClosed":true,"seq":%d,"epoch":"e","source":"poll"}}`, lastPrice9, k+1))
			wmu.Unlock()
		}
		if !watching || source == "" || (id == 9 && (!sc.At(k).Before(g.closeAt) || k%2 == 1)) {
			continue
		}
		if id == 9 {
			lastPrice9 = price
		}
		wmu.Lock()
		_ = conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil,
			`{"type":"auctionState","auction":{"id":"%d","data":{"currentBid":1},"currentBid":%d,"seq":%d,"epoch":"e","source":%q}}`, id, price, k+1, source))
		wmu.Unlock()
	}
}

// TestRunSplitsGroups: three clients each watch two of three lots; the
// result counts each (client, lot) pair in the group its changes came by,
// expects nothing of a lot after its close, counts the changes in a lot's
// last window apart, and counts a change superseded by a newer price as
// covered, not delivered, in a lot's last window too.
func TestRunSplitsGroups(t *testing.T) {
	g := &lotsGateway{sched: make(chan nellissim.Schedule, 3)}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	opt := Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Secret: "s", Clients: 3,
		Products: []int64{7, 9, 11}, Watch: 2}
	res := runLots(t, g, opt, func(sc nellissim.Schedule) Plan {
		// Events 0-29 in the window; lot 9's are k = 1, 4, 7, …; it closes
		// when event 15 is due, its last window holding k = 7, 10, 13.
		g.until, g.closeAt = sc.At(30), sc.At(15)
		return Plan{Schedule: sc, MeasureFrom: sc.Start, MeasureUntil: g.until, DrainUntil: g.until.Add(300 * time.Millisecond),
			Closes: map[int64]time.Time{9: g.closeAt}, LastWindow: g.closeAt.Sub(sc.At(7))}
	})
	// Client 0 watches 7 and 9, client 1 11 and 7, client 2 9 and 11.
	// Lot 9 sends k = 4 and 10 of 1, 4, 7, 10, 13: 1 and 7 are covered
	// by the next price, 13 by none.
	want := map[string]Group{
		"stream":  {Pairs: 2, Expected: 20, Delivered: 20, Covered: 20},
		"polled":  {Pairs: 4, Expected: 30, Delivered: 4, Drops: 26, Covered: 8},
		"closing": {Pairs: 2, Expected: 6, Delivered: 2, Drops: 4, Covered: 4},
	}
	for name, w := range want {
		got := res.Groups[name]
		if got.Pairs != w.Pairs || got.Expected != w.Expected || got.Delivered != w.Delivered || got.Drops != w.Drops ||
			got.Covered != w.Covered || got.Latency.N != int(got.Delivered) || got.Staleness.N != int(got.Expected) {
			t.Errorf("%s: %+v, want %+v", name, got, w)
		}
	}
	// Lot 11's first change (k = 2, due 33 ms in), never covered, was
	// still stale when the drain ended 800 ms in.
	if st := res.Groups["polled"].Staleness; st.Max < 766 || st.Max > 767 {
		t.Errorf("polled staleness max %.1f ms, want lot 11's 767 ms", st.Max)
	}
	if res.Expected != 50 || res.Delivered != 24 || res.Drops != 26 || res.Duplicates != 0 {
		t.Errorf("totals: expected %d delivered %d drops %d duplicates %d, want 50, 24, 26 and no duplicate (a close repeating the price is none)",
			res.Expected, res.Delivered, res.Drops, res.Duplicates)
	}
}

// TestRunCountsAPromotedLotAsPolled: a lot polled for part of the window
// and on a stream after is not "on a stream": its polled changes' latency
// is a poll's. Its changes by SSE still count among every change by SSE.
func TestRunCountsAPromotedLotAsPolled(t *testing.T) {
	g := &lotsGateway{sched: make(chan nellissim.Schedule, 3), promoted: true, promoteAt: 15}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	opt := Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Secret: "s", Clients: 3,
		Products: []int64{7, 9, 11}, Watch: 2}
	res := runLots(t, g, opt, func(sc nellissim.Schedule) Plan {
		g.until, g.closeAt = sc.At(30), sc.At(15)
		return Plan{Schedule: sc, MeasureFrom: sc.Start, MeasureUntil: g.until, DrainUntil: g.until.Add(300 * time.Millisecond),
			Closes: map[int64]time.Time{9: g.closeAt}, LastWindow: g.closeAt.Sub(sc.At(7))}
	})
	// Lot 11 (clients 1 and 2) sends k = 2, 5, …, 29: by poll up to 14,
	// by SSE from 17 on (5 of its 10).
	want := map[string]Group{
		"stream": {Pairs: 2, Expected: 20, Delivered: 20},
		"polled": {Pairs: 4, Expected: 30, Delivered: 24, Drops: 6},
		"sse":    {Expected: 30, Delivered: 30},
	}
	for name, w := range want {
		got := res.Groups[name]
		if got.Pairs != w.Pairs || got.Expected != w.Expected || got.Delivered != w.Delivered || got.Drops != w.Drops || got.Latency.N != int(got.Delivered) {
			t.Errorf("%s: %+v, want %+v", name, got, w)
		}
	}
}

// TestRunSplitsCrossNode: with Plan.Remote, each client's changes split
// into "cross", the products another node than its own owns (its
// endpoint's list), and "local", the rest.
func TestRunSplitsCrossNode(t *testing.T) {
	g := &lotsGateway{sched: make(chan nellissim.Schedule, 2)}
	a, b := httptest.NewServer(g), httptest.NewServer(g)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	urlA, urlB := "ws"+strings.TrimPrefix(a.URL, "http"), "ws"+strings.TrimPrefix(b.URL, "http")
	opt := Options{URL: urlA + "," + urlB, Secret: "s", Clients: 2, Products: []int64{7, 9, 11}}
	res := runLots(t, g, opt, func(sc nellissim.Schedule) Plan {
		g.until, g.closeAt = sc.At(30), sc.At(30) // 10 events a lot, all pushed but 11's
		return Plan{Schedule: sc, MeasureFrom: sc.Start, MeasureUntil: g.until, DrainUntil: g.until.Add(300 * time.Millisecond),
			Remote: map[string][]int64{urlA: {9}, urlB: {7}}}
	})
	// Client 0 on A reads 9 from another node, client 1 on B reads 7.
	// The gateway pushes every change of 7, every other one of 9 (a
	// polled lot), none of 11.
	want := map[string]Group{
		"cross": {Pairs: 2, Expected: 20, Delivered: 15, Drops: 5},
		"local": {Pairs: 4, Expected: 40, Delivered: 15, Drops: 25},
	}
	for name, w := range want {
		got := res.Groups[name]
		if got.Pairs != w.Pairs || got.Expected != w.Expected || got.Delivered != w.Delivered || got.Drops != w.Drops || got.Latency.N != int(got.Delivered) {
			t.Errorf("%s: %+v, want %+v", name, got, w)
		}
	}
}

// runLots runs the load generator with opt against g: once every client is
// ready it hands over the plan planFor makes of a schedule starting soon
// (60 events a second over opt.Products), plays that schedule to each
// client and returns the result.
func runLots(t *testing.T, g *lotsGateway, opt Options, planFor func(nellissim.Schedule) Plan) Result {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	defer inW.Close()
	done := make(chan error, 1)
	go func() {
		done <- Run(t.Context(), opt, inR, outW)
		outW.Close()
	}()
	out := bufio.NewScanner(outR)
	var ready Ready
	if !out.Scan() || json.Unmarshal(out.Bytes(), &ready) != nil || ready.Connected != opt.Clients {
		t.Fatalf("ready: %q", out.Text())
	}
	sc := nellissim.Schedule{Start: time.Now().Add(300 * time.Millisecond), Rate: 60, Products: opt.Products, BasePrice: 1000}
	line, _ := json.Marshal(planFor(sc))
	if _, err := inW.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	for range opt.Clients {
		g.sched <- sc
	}
	var res Result
	if !out.Scan() || json.Unmarshal(out.Bytes(), &res) != nil {
		t.Fatalf("no result line: %q", out.Text())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return res
}
