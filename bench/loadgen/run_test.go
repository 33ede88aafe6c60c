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

// fakeGateway speaks just enough of the extension protocol: it answers
// authenticate (checking the token) and startMonitoring, then pushes the
// schedule's events at their due times, with one event missing, one sent
// twice and one price from before the schedule.
type fakeGateway struct {
	secret string
	sched  chan nellissim.Schedule // the schedule, once the plan is known
	until  time.Time

	mu      sync.Mutex
	streams []chan nellissim.Schedule
	tokens  []string // every token authenticated with
	wg      sync.WaitGroup
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	mine := make(chan nellissim.Schedule, 1)
	g.mu.Lock()
	g.streams = append(g.streams, mine)
	g.mu.Unlock()
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"connected","clientId":"c"}`))
	var msg struct {
		Type, Token, AuctionID, RequestID string
	}
	for monitored := 0; monitored < 2; {
		if err := conn.ReadJSON(&msg); err != nil {
			return
		}
		switch msg.Type {
		case "authenticate":
			ok := strings.HasPrefix(msg.Token, g.secret+"-")
			g.mu.Lock()
			g.tokens = append(g.tokens, msg.Token)
			g.mu.Unlock()
			_ = conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"authenticated","success":%t,"requestId":%q}`, ok, msg.RequestID))
		case "startMonitoring":
			monitored++
			_ = conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil,
				`{"type":"response","action":"startMonitoring","auctionId":%q,"success":true,"requestId":%q}`, msg.AuctionID, msg.RequestID))
			// The lot's state, as yet without a change, as the gateway
			// follows each startMonitoring reply.
			_ = conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil,
				`{"type":"auctionState","auction":{"id":%q,"status":"monitoring","data":null}}`, msg.AuctionID))
		}
	}
	sc := <-mine
	seqs := make(map[int64]uint64) // each product's feed numbers its changes
	push := func(id int64, price int, seq uint64) {
		_ = conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil,
			`{"type":"auctionState","auction":{"id":"%d","data":{"currentBid":1,"lastBidder":"x"},"currentBid":%d,"seq":%d,"epoch":"e1","source":"sse"}}`, id, price, seq))
	}
	next := func(id int64) uint64 { seqs[id]++; return seqs[id] }
	push(sc.Products[0], sc.BasePrice-1, next(sc.Products[0])) // the lot's price before the schedule: ignored
	for k := int64(0); sc.At(k).Before(g.until); k++ {
		time.Sleep(time.Until(sc.At(k))) // emit on schedule, as the simulator does
		id, price := sc.Event(k)
		seq := next(id)
		switch k {
		case 3:
			continue // lost
		case 5:
			push(id, price, seq)
			push(id, price, seq) // sent twice
		case 7:
			push(id, price, seq)
			push(id, price, next(id)) // the same price again, newer: another field moved
		case 8:
			push(id, price, seq)
			_, older := sc.Event(k - 2) // the product's previous price (two products alternate)
			push(id, older, next(id))   // a newer change with a lower price: a regression
		default:
			push(id, price, seq)
		}
	}
	// Hold the socket until the load generator closes it.
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}

func (g *fakeGateway) start(sc nellissim.Schedule) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.streams {
		s <- sc
	}
}

// startRun runs the load generator with clients sockets against g, with
// secret s3cret and products 7 and 9, and reads its ready line. The plan
// goes to inW, the result comes from out, Run's error from done.
func startRun(t *testing.T, g *fakeGateway, clients int) (inW *io.PipeWriter, out *bufio.Scanner, done chan error, ready Ready) {
	t.Helper()
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return startRunWith(t, Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Secret: "s3cret", Clients: clients, Products: []int64{7, 9}})
}

// startRunWith is startRun with the options given.
func startRunWith(t *testing.T, opt Options) (inW *io.PipeWriter, out *bufio.Scanner, done chan error, ready Ready) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done = make(chan error, 1)
	go func() {
		done <- Run(t.Context(), opt, inR, outW)
		outW.Close()
	}()
	out = bufio.NewScanner(outR)
	if !out.Scan() || json.Unmarshal(out.Bytes(), &ready) != nil {
		t.Fatalf("no ready line: %q", out.Text())
	}
	return inW, out, done, ready
}

// Run measures what a user would notice: every change delivered once, the
// lost one counted as a drop, the one sent twice and the price that went
// backwards as duplicates, and a newer change at the same price (another
// field moved) as a restate, which is neither.
func TestRunCountsDeliveriesDropsAndDuplicates(t *testing.T) {
	g := &fakeGateway{secret: "s3cret"}
	inW, out, done, ready := startRun(t, g, 3)
	if ready.Connected != 3 || ready.Failed != 0 {
		t.Fatalf("ready = %+v, want 3 connected", ready)
	}
	start := time.Now().Add(300 * time.Millisecond)
	sc := nellissim.Schedule{Start: start, Rate: 50, Products: []int64{7, 9}, BasePrice: 1000}
	g.until = sc.At(10) // events 0-9 in the window
	plan := Plan{Schedule: sc, MeasureFrom: start, MeasureUntil: g.until, DrainUntil: g.until.Add(300 * time.Millisecond)}
	line, _ := json.Marshal(plan)
	if _, err := inW.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	g.start(sc)
	var res Result
	if !out.Scan() || json.Unmarshal(out.Bytes(), &res) != nil {
		t.Fatalf("no result line: %q", out.Text())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	inW.Close()
	if res.Expected != 30 || res.Delivered != 27 || res.Drops != 3 || res.Duplicates != 6 || res.Restates != 3 {
		t.Fatalf("result = %+v; want 30 expected, 27 delivered, 3 drops, 6 duplicates, 3 restates", res)
	}
	if res.Regressions != 3 || res.Resume != nil {
		t.Fatalf("result = %+v; want the 3 lower prices as regressions, no resume", res)
	}
	if res.Open != 3 || res.Sources["sse"] != 27 || res.Latency.N != 27 {
		t.Fatalf("result = %+v; want 3 open, 27 sse latencies", res)
	}
	if res.StatesMissing != 0 || res.StateSetupSecs <= 0 || res.StateSetupSecs > ready.SetupSecs+1 {
		t.Fatalf("result = %+v; want every client's first states timed within the setup (%.3f s)", res, ready.SetupSecs)
	}
	if res.Latency.Max > 250 {
		t.Fatalf("latency max %.1f ms for on-time pushes over loopback", res.Latency.Max)
	}
}

// A client refused at authenticate is reported, not fatal.
func TestRunReportsRefusedClients(t *testing.T) {
	g := &fakeGateway{secret: "other"}
	inW, _, done, ready := startRun(t, g, 2)
	if ready.Connected != 0 || ready.Failed != 2 || !strings.Contains(ready.FirstErr, "authenticate: refused") {
		t.Fatalf("ready = %+v; want 2 refused at authenticate", ready)
	}
	inW.Close() // no plan: Run ends with an error, sockets closed
	if err := <-done; err == nil || !strings.Contains(err.Error(), "read plan") {
		t.Fatalf("Run without a plan: %v", err)
	}
}

// The clients of a cluster run spread evenly over its nodes, client i on
// node (first+i) mod n, so each node serves a third of them.
func TestClientURLSpreadsClients(t *testing.T) {
	urls := "ws://a/ws,ws://b/ws,ws://c/ws"
	count := map[string]int{}
	for i := range 999 {
		count[ClientURL(urls, 1+i)]++
	}
	if len(count) != 3 || count["ws://a/ws"] != 333 || count["ws://b/ws"] != 333 || count["ws://c/ws"] != 333 {
		t.Fatalf("999 clients over three nodes: %v", count)
	}
	if ClientURL(urls, 4) != "ws://b/ws" {
		t.Fatalf("client 4 dials %s, want the second node", ClientURL(urls, 4))
	}
	if ClientURL("ws://one/ws", 7) != "ws://one/ws" {
		t.Fatal("a single URL is every client's")
	}
}
