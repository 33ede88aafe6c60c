package module

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/metrics"
	"github.com/nellis-edge/gateway/nellissim"
)

// The fault suite: the gateway in a real Caddy follows an in-process
// simulator while the simulator misbehaves, and a client speaking the
// extension's protocol watches one lot. Each test asserts what a bidder
// would notice (the price, how fast it came, whether it came twice) and
// that the gateway's metrics name what went wrong.
//
// Caddy runs once per test binary and the `nellis` app's state outlives a
// reload, so every test starts and ends by loading a config without the
// app: the state is destroyed and the next test gets fresh feeds, fresh
// counters and a fresh relay, whatever ran before.

const (
	gatewayMetrics    = "http://127.0.0.1:9080/metrics"
	gatewaySSEMetrics = "http://127.0.0.1:9080/metrics/sse"
	// emptyConfig keeps only the admin endpoint: loading it stops the
	// gateway as a shutdown would.
	emptyConfig = "{\n\tadmin localhost:2999\n}\n"
)

// faultConfig is the gateway alone on :9080, following sseURL and apiURL,
// with Prometheus metrics on /metrics and extra lines for the nellis
// block.
func faultConfig(sseURL, apiURL, storage, nellisExtra string) string {
	return fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	grace_period 1ns
	storage file_system %[4]s
	nellis {
		sse_endpoint %[1]s
		api_endpoint %[2]s
		auth_token %[3]s
		%[5]s
	}
}

http://127.0.0.1:9080 {
	bind 127.0.0.1
	nellis_ws /ws {
		allowed_origins %[6]s
	}
	nellis_api /api/*
	nellis_sse_metrics /metrics/sse
	metrics /metrics
}
`, sseURL, apiURL, testToken, storage, nellisExtra, testOrigin)
}

// startGateway loads a fresh gateway following sseURL and apiURL. When the
// test ends it stops the gateway and checks that every upstream stream to
// sim was closed with it.
func startGateway(t *testing.T, sim *nellissim.Simulator, sseURL, apiURL, nellisExtra string) *caddytest.Tester {
	t.Helper()
	tester := caddytest.NewTester(t)
	tester.InitServer(emptyConfig, "caddyfile")
	tester.InitServer(faultConfig(sseURL, apiURL, t.TempDir(), nellisExtra), "caddyfile")
	t.Cleanup(func() {
		tester.InitServer(emptyConfig, "caddyfile")
		deadline := time.Now().Add(3 * time.Second)
		for {
			st, err := sim.Stats(0)
			if err != nil || st.StreamsOpen == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d upstream streams still open 3s after the gateway stopped", st.StreamsOpen)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	return tester
}

// eventually polls cond every 10ms and returns when it first held, or
// fails the test after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func snapshotRequests(st nellissim.Stats) int64 {
	return st.Snapshots.JSON + st.Snapshots.Data + st.Snapshots.HTML
}

// settle waits until the feed of id has its upstream stream open and has
// fetched its first snapshot and the reconcile that follows the stream's
// start, so that a bid emitted next can only arrive over the stream.
func settle(t *testing.T, sim *nellissim.Simulator, id int64) {
	t.Helper()
	eventually(t, 5*time.Second, "the stream to open and the first snapshots to be fetched", func() bool {
		st := streams(t, sim, id)
		return st.StreamsOpen == 1 && snapshotRequests(st) >= 2
	})
}

// lotNow is the simulator's view of lot id.
func lotNow(t *testing.T, sim *nellissim.Simulator, id int64) nellissim.Auction {
	t.Helper()
	for _, a := range sim.Auctions() {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("lot %d not in the simulator", id)
	return nellissim.Auction{}
}

// bidder emits rival bids on one lot, each from a new rival, each one
// dollar above the current price.
type bidder struct {
	sim *nellissim.Simulator
	id  int64
	n   int
}

// bid places the next bid and returns the lot as the simulator has it
// afterwards: the price, next bid and bid count a client must see.
func (b *bidder) bid(t *testing.T) nellissim.Auction {
	t.Helper()
	b.n++
	amount := lotNow(t, b.sim, b.id).NextBid
	if err := b.sim.EmitBid(b.id, amount, fmt.Sprintf("rival-%d", b.n)); err != nil {
		t.Fatalf("bid %d on lot %d: %v", amount, b.id, err)
	}
	return lotNow(t, b.sim, b.id)
}

// promSample is one scrape of the gateway's /metrics: value by series,
// e.g. `nellis_upstream_stream_failures_total{reason="stall"}`.
type promSample map[string]float64

func scrape(t *testing.T) promSample {
	t.Helper()
	res, err := http.Get(gatewayMetrics)
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape metrics: %s", res.Status)
	}
	p := promSample{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the last space: label values may hold spaces.
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("scrape metrics: bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape metrics: bad line %q: %v", line, err)
		}
		p[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	if len(p) == 0 {
		// Caddy answers 200 and nothing where no route matches.
		t.Fatalf("%s answered no metrics: the config on the fixed caddytest ports is not this test's (another test process?)", gatewayMetrics)
	}
	return p
}

func (p promSample) get(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := p[series]
	if !ok {
		var names []string
		for k := range p {
			if strings.HasPrefix(k, "nellis_") {
				names = append(names, k)
			}
		}
		t.Fatalf("metric %s is not exposed (%d series, nellis ones: %q)", series, len(p), names)
	}
	return v
}

// grew returns how much series grew from before to now.
func grew(t *testing.T, before promSample, series string) float64 {
	t.Helper()
	return scrape(t).get(t, series) - before.get(t, series)
}

// awaitGrowth waits until series has grown by at least n since before.
func awaitGrowth(t *testing.T, before promSample, series string, n float64, within time.Duration) time.Time {
	t.Helper()
	return eventually(t, within, series+" to grow by "+fmt.Sprint(n), func() bool {
		return grew(t, before, series) >= n
	})
}

func failures(reason string) string {
	return `nellis_upstream_stream_failures_total{reason="` + reason + `"}`
}

const (
	coalescedFrames     = "nellis_ws_coalesced_frames_total"
	decodeErrors        = "nellis_upstream_decode_errors_total"
	fallbackActivations = "nellis_fallback_activations_total"
	breakerClosed       = `nellis_breaker_transitions_total{from="half-open",to="closed"}`
	otherEvents         = `nellis_upstream_events_total{type="other"}`
)

// stateMsg is one auctionState the watching client received for its lot.
type stateMsg struct {
	at       time.Time
	seq      uint64
	epoch    string
	source   string
	price    float64 // data.currentBid
	panel    float64 // the top-level copy the extension's panel reads
	bidCount int
	nextBid  float64 // data.nextBid
	panelBid float64 // the top-level nextBid
	blank    bool    // no change yet: "data":null, no seq
}

func (s stateMsg) String() string {
	if s.blank {
		return "no data"
	}
	return fmt.Sprintf("seq %d price %v source %s", s.seq, s.price, s.source)
}

// watcher is an extension monitoring one lot. A goroutine reads its socket
// until it closes, recording every auctionState that carries a change.
type watcher struct {
	conn    *websocket.Conn
	id      string
	changed chan struct{} // signalled after each recorded message or the end
	done    chan struct{} // closed when the reader has returned

	mu       sync.Mutex
	states   []stateMsg
	replies  map[string]map[string]any // by requestId
	problems []string                  // messages that broke the protocol
	err      error                     // what ended the reader
}

// watch connects a client and starts monitoring productID. It reads from
// the start: a change may be broadcast before the reply to startMonitoring,
// and it must not be missed.
func watch(t *testing.T, productID int64) *watcher {
	t.Helper()
	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatalf("dial the gateway: %v", err)
	}
	w := &watcher{
		conn: ext.conn, id: fmt.Sprint(productID),
		replies: map[string]map[string]any{},
		changed: make(chan struct{}, 1), done: make(chan struct{}),
	}
	go w.read()
	t.Cleanup(func() {
		w.conn.Close()
		<-w.done
	})
	w.request(t, map[string]any{"type": "authenticate", "token": testToken, "requestId": "req_1"})
	w.request(t, map[string]any{
		"type": "startMonitoring", "auctionId": w.id, "requestId": "req_2",
		"config":   map[string]any{"maxBid": 5, "strategy": "sniping", "incrementAmount": 1, "autoBid": false},
		"metadata": map[string]any{"source": "test", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", productID)},
	})
	return w
}

// request sends a request and waits for its successful reply.
func (w *watcher) request(t *testing.T, req map[string]any) {
	t.Helper()
	id := req["requestId"].(string)
	if err := w.conn.WriteJSON(req); err != nil {
		t.Fatalf("%s: %v", req["type"], err)
	}
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		w.mu.Lock()
		reply, ok := w.replies[id]
		err := w.err
		w.mu.Unlock()
		switch {
		case ok && reply["success"] == true:
			return
		case ok:
			t.Fatalf("%s: %v", req["type"], reply)
		case err != nil:
			t.Fatalf("%s: the socket ended: %v", req["type"], err)
		}
		select {
		case <-w.changed:
		case <-timer.C:
			t.Fatalf("%s: no reply in 5s", req["type"])
		}
	}
}

func (w *watcher) read() {
	defer close(w.done)
	for {
		_, data, err := w.conn.ReadMessage()
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			w.notify()
			return
		}
		var m struct {
			Type      string `json:"type"`
			RequestID string `json:"requestId"`
			Auction   *struct {
				ID         string   `json:"id"`
				Seq        *uint64  `json:"seq"`
				Epoch      string   `json:"epoch"`
				Source     string   `json:"source"`
				CurrentBid *float64 `json:"currentBid"`
				NextBid    float64  `json:"nextBid"`
				Data       *struct {
					CurrentBid *float64 `json:"currentBid"`
					NextBid    float64  `json:"nextBid"`
					BidCount   int      `json:"bidCount"`
				} `json:"data"`
			} `json:"auction"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			w.problem(fmt.Sprintf("a message that is not JSON: %v: %.200s", err, data))
			continue
		}
		if m.RequestID != "" {
			var reply map[string]any
			_ = json.Unmarshal(data, &reply) // it decoded once already
			w.mu.Lock()
			w.replies[m.RequestID] = reply
			w.mu.Unlock()
			w.notify()
			continue
		}
		a := m.Auction
		if m.Type != "auctionState" || a == nil || a.ID != w.id {
			continue
		}
		if a.Seq == nil {
			// The state before the feed's first change: no data yet.
			w.mu.Lock()
			w.states = append(w.states, stateMsg{at: time.Now(), blank: true})
			w.mu.Unlock()
			continue
		}
		if a.Data == nil || a.Data.CurrentBid == nil || a.CurrentBid == nil {
			w.problem(fmt.Sprintf("auctionState seq %d without a price: %.300s", *a.Seq, data))
			continue
		}
		w.mu.Lock()
		w.states = append(w.states, stateMsg{
			at: time.Now(), seq: *a.Seq, epoch: a.Epoch, source: a.Source,
			price: *a.Data.CurrentBid, panel: *a.CurrentBid, bidCount: a.Data.BidCount,
			nextBid: a.Data.NextBid, panelBid: a.NextBid,
		})
		w.mu.Unlock()
		w.notify()
	}
}

func (w *watcher) problem(p string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.problems = append(w.problems, p)
}

func (w *watcher) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watcher) history() []stateMsg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]stateMsg(nil), w.states...)
}

// await waits until the client has received a state showing price, and
// returns the first such state.
func (w *watcher) await(t *testing.T, price float64, deadline time.Time) stateMsg {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		w.mu.Lock()
		for _, s := range w.states {
			if !s.blank && s.price == price {
				w.mu.Unlock()
				return s
			}
		}
		err := w.err
		w.mu.Unlock()
		if err != nil {
			t.Fatalf("waiting for price %v: the socket ended: %v (received %v)", price, err, w.history())
		}
		select {
		case <-w.changed:
		case <-timer.C:
			h := w.history()
			note := ""
			if len(h) > 0 && h[len(h)-1].blank {
				note = "; the client's lot shows no data: a change was lost"
			}
			t.Fatalf("price %v did not reach the client in time (received %v%s)", price, h, note)
		}
	}
}

// awaitBid waits for a bid's price, checks that the state carries the
// simulator's price, next bid and bid count, in both places the extension
// reads, and that it came from an allowed source.
func (w *watcher) awaitBid(t *testing.T, lot nellissim.Auction, deadline time.Time, sources ...string) stateMsg {
	t.Helper()
	s := w.await(t, float64(lot.CurrentBid), deadline)
	if s.panel != s.price {
		t.Errorf("price %v in data but %v at the auction's top level", s.price, s.panel)
	}
	if s.bidCount != lot.BidCount {
		t.Errorf("price %v arrived with bid count %d, want %d", s.price, s.bidCount, lot.BidCount)
	}
	// The next bid is what the extension offers: one at or below the price
	// is refused by Nellis as too low.
	if want := float64(lot.NextBid); s.nextBid != want || s.panelBid != want {
		t.Errorf("price %v arrived with next bid %v (panel %v), want %v", s.price, s.nextBid, s.panelBid, want)
	}
	if len(sources) > 0 && !contains(sources, s.source) {
		t.Errorf("price %v arrived with source %q, want one of %q", s.price, s.source, sources)
	}
	return s
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// count is how many states the client received showing price.
func (w *watcher) count(price float64) int {
	n := 0
	for _, s := range w.history() {
		if !s.blank && s.price == price {
			n++
		}
	}
	return n
}

// awaitEnd waits for the socket to end and returns why.
func (w *watcher) awaitEnd(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(within):
		t.Fatalf("the socket was still open %v later", within)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// checkHistory asserts what the gateway guarantees a client that keeps
// reading: once it has a state it never shows "no data" again; one epoch
// (the feed lives as long as the lot is watched); seq
// never goes backwards, and a repeated seq is the same state sent again
// (the reply to startMonitoring may repeat the change being delivered);
// the price never goes backwards; and seq skips a change only when the
// client's queue coalesced it into a newer one (full states, latest wins:
// that is the relay's contract), which coalescedFrames counts. Seq gaps
// without coalescing would mean a lost change.
func (w *watcher) checkHistory(t *testing.T, before promSample) {
	t.Helper()
	w.mu.Lock()
	for _, p := range w.problems {
		t.Errorf("the gateway sent %s", p)
	}
	w.mu.Unlock()
	var h []stateMsg
	for i, s := range w.history() {
		if !s.blank {
			h = append(h, s)
		} else if len(h) > 0 {
			t.Errorf("state %d: the client's lot went back to no data after %v", i, h[len(h)-1])
		}
	}
	if len(h) == 0 {
		t.Error("the client received no state at all")
		return
	}
	gaps := 0
	for i := 1; i < len(h); i++ {
		prev, cur := h[i-1], h[i]
		switch {
		case cur.epoch != prev.epoch:
			t.Errorf("epoch changed from %s to %s at %v: the feed was recreated while watched", prev.epoch, cur.epoch, cur)
		case cur.seq < prev.seq:
			t.Errorf("seq went backwards: %v after %v", cur, prev)
		case cur.seq == prev.seq && cur.price != prev.price:
			t.Errorf("seq %d sent twice with different prices: %v and %v", cur.seq, prev, cur)
		case cur.seq > prev.seq+1:
			gaps++
		}
		if cur.price < prev.price {
			t.Errorf("price went backwards: %v after %v", cur, prev)
		}
	}
	if gaps > 0 {
		if c := grew(t, before, coalescedFrames); c < float64(gaps) {
			t.Errorf("%d seq gaps but only %v coalesced frames: changes were lost (received %v)", gaps, c, h)
		}
	}
}

// rig is the first lot of a fresh simulator followed by a fresh gateway and
// watched by one client, with its stream open and a first bid delivered
// over it.
type rig struct {
	tester *caddytest.Tester
	sim    *nellissim.Simulator
	id     int64
	w      *watcher
	bids   *bidder
	before promSample // the gateway's metrics before any fault
}

func newRig(t *testing.T, nellisExtra string) *rig {
	t.Helper()
	sim, simURL := newSimulator(t)
	r := &rig{sim: sim, tester: startGateway(t, sim, simURL, simURL, nellisExtra)}
	r.before = scrape(t)
	lot := sim.Auctions()[0]
	r.id = lot.ID
	r.bids = &bidder{sim: sim, id: lot.ID}
	r.w = watch(t, lot.ID)
	r.w.await(t, float64(lot.CurrentBid), time.Now().Add(5*time.Second))
	settle(t, sim, lot.ID)
	r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
	return r
}

func (r *rig) stats(t *testing.T) nellissim.Stats {
	t.Helper()
	return streams(t, r.sim, r.id)
}

// TestFaultUpstreamEOF: Nellis ends the stream; a new one opens within
// 1.5s, and a bid made while there was none reaches the client exactly
// once, within 3s of the reconnect.
func TestFaultUpstreamEOF(t *testing.T) {
	// A long poll interval keeps fallback polling out of the outage, which
	// lasts under a second: what heals the gap must be the reconcile that
	// follows the reconnect.
	r := newRig(t, "poll_interval 10s")
	opened := r.stats(t).StreamsOpened
	dropped := time.Now()
	if err := r.sim.DropStreams(r.id); err != nil {
		t.Fatal(err)
	}
	during := r.bids.bid(t)
	inGap := r.stats(t).StreamsOpened == opened
	reopened := eventually(t, 1500*time.Millisecond, "a new stream after EOF", func() bool {
		return r.stats(t).StreamsOpened > opened
	})
	t.Logf("EOF to new stream: %v", reopened.Sub(dropped).Round(time.Millisecond))
	// Nellis never replays an event: a bid made before the new stream
	// opened can only come by the reconcile snapshot.
	sources := []string{"sse", "reconcile"}
	if inGap {
		sources = []string{"reconcile"}
	}
	s := r.w.awaitBid(t, during, reopened.Add(3*time.Second), sources...)
	t.Logf("bid during the outage (before the new stream: %v) came by %s, %v after the drop",
		inGap, s.source, s.at.Sub(dropped).Round(time.Millisecond))

	r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
	if n := r.w.count(float64(during.CurrentBid)); n != 1 {
		t.Errorf("the bid made during the outage reached the client %d times, want exactly once", n)
	}
	if n := grew(t, r.before, failures("eof")); n != 1 {
		t.Errorf("%s grew by %v, want the one EOF", failures("eof"), n)
	}
	r.w.checkHistory(t, r.before)
}

// TestFaultUpstreamStall: the stream goes silent with its socket open; a
// new one opens within 5s (stall_timeout 3s, the default), the bid lost in
// the silence is healed, and bids flow again.
func TestFaultUpstreamStall(t *testing.T) {
	// As in the EOF test: the reconcile after the stall heals the gap,
	// not a fallback poll.
	r := newRig(t, "poll_interval 10s")
	opened := r.stats(t).StreamsOpened
	stalled := time.Now()
	if err := r.sim.Stall(r.id, true); err != nil {
		t.Fatal(err)
	}
	lost := r.bids.bid(t) // its event is swallowed by the stall
	reopened := eventually(t, 5*time.Second, "a new stream after a stall", func() bool {
		return r.stats(t).StreamsOpened > opened
	})
	if err := r.sim.Stall(r.id, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("stall to new stream: %v", reopened.Sub(stalled).Round(time.Millisecond))
	// The gateway reconciles as soon as it declares the stall, before it
	// reconnects.
	s := r.w.awaitBid(t, lost, reopened.Add(3*time.Second), "reconcile")
	t.Logf("the bid lost in the stall came by %s, %v after the stall began",
		s.source, s.at.Sub(stalled).Round(time.Millisecond))
	for range 3 {
		r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
	}
	if n := r.w.count(float64(lost.CurrentBid)); n != 1 {
		t.Errorf("the bid lost in the stall reached the client %d times, want exactly once", n)
	}
	if n := grew(t, r.before, failures("stall")); n != 1 {
		t.Errorf("%s grew by %v, want the one stall", failures("stall"), n)
	}
	r.w.checkHistory(t, r.before)
}

// TestFaultUpstreamErrors: the stream answers 500 again and again; the
// breaker opens and polling brings prices; once the stream answers again
// the product is back on SSE and polling falls to the safety net.
func TestFaultUpstreamErrors(t *testing.T) {
	r := newRig(t, "breaker_cooldown 2s\n\t\tpoll_interval 500ms")
	if err := r.sim.FailStreams(r.id, 10, http.StatusInternalServerError); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	if err := r.sim.DropStreams(r.id); err != nil {
		t.Fatal(err)
	}
	// The EOF and two 500s make breaker_failures (3) in a row.
	opened := awaitGrowth(t, r.before, fallbackActivations, 1, 10*time.Second)
	atOpen := snapshotRequests(r.stats(t))
	t.Logf("drop to breaker open: %v", opened.Sub(dropped).Round(time.Millisecond))
	// The opening breaker reconciles, then polls every 500ms. Once a
	// scheduled poll has come, a bid can only be brought by the next one,
	// well before the first probe (cool-down 2s ±20%) reopens the breaker
	// and reconciles again.
	eventually(t, 2*time.Second, "fallback polling", func() bool {
		return snapshotRequests(r.stats(t)) >= atOpen+2
	})
	s := r.w.awaitBid(t, r.bids.bid(t), dropped.Add(10*time.Second), "poll")
	t.Logf("drop to first polled change: %v", s.at.Sub(dropped).Round(time.Millisecond))

	// Recovery: Nellis serves streams again. The failures left are
	// cleared rather than used up, since each failed probe doubles the
	// cool-down: seven more would take minutes.
	recovering := time.Now()
	st := r.stats(t)
	fallbackRate := float64(snapshotRequests(st)-atOpen) / recovering.Sub(opened).Seconds()
	if err := r.sim.FailStreams(r.id, 0, http.StatusInternalServerError); err != nil {
		t.Fatal(err)
	}
	// The next probe comes within two cool-downs (a probe that failed
	// meanwhile doubled it), jittered by 20%.
	reopened := eventually(t, 6*time.Second, "a probe stream after recovery", func() bool {
		return r.stats(t).StreamsOpened > st.StreamsOpened
	})
	awaitGrowth(t, r.before, breakerClosed, 1, 2*time.Second)
	t.Logf("recovery to a healthy stream: %v; %d stream requests had failed",
		reopened.Sub(recovering).Round(time.Millisecond), st.StreamRequests-st.StreamsOpened)
	r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")

	// Polling falls back to the safety net (30s): at most one snapshot
	// request in the next 3s (a reconcile of the new stream finishing
	// late), where fallback polled every 500ms.
	quiet := snapshotRequests(r.stats(t))
	time.Sleep(3 * time.Second) // a measurement window, not synchronisation
	healthy := snapshotRequests(r.stats(t)) - quiet
	t.Logf("snapshot requests: %.1f/s with the breaker open, %d in 3s back on SSE", fallbackRate, healthy)
	if fallbackRate < 1 {
		t.Errorf("fallback polled %.1f times a second, want about 2 (poll_interval 500ms)", fallbackRate)
	}
	if healthy > 1 {
		t.Errorf("%d snapshot requests in 3s back on SSE: fallback polling did not stop", healthy)
	}
	r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")

	if n := grew(t, r.before, failures("status")); n < 2 {
		t.Errorf("%s grew by %v, want the 500s counted", failures("status"), n)
	}
	if n := grew(t, r.before, failures("eof")); n != 1 {
		t.Errorf("%s grew by %v, want the one drop", failures("eof"), n)
	}
	r.w.checkHistory(t, r.before)
}

// TestFaultUpstreamPayloads: what Nellis sends is wrong or unusual; the
// stream itself is fine.
func TestFaultUpstreamPayloads(t *testing.T) {
	// Three subtests reconnect within a second or two of each other, which
	// would double the reconnect delay each time; how long it is does not
	// matter here, so backoff_max 1s keeps it at its first step.
	r := newRig(t, "backoff_max 1s")
	event := fmt.Sprintf("ch_product_bids:%d", r.id)

	t.Run("malformed JSON", func(t *testing.T) {
		before := scrape(t)
		var sse metrics.SSEReport
		getJSON(t, gatewaySSEMetrics, &sse)
		opened := r.stats(t).StreamsOpened
		received := len(r.w.history())
		if err := r.sim.SendRaw(r.id, event, fmt.Sprintf(`{"productId":%d,"currentBid":`, r.id)); err != nil {
			t.Fatal(err)
		}
		awaitGrowth(t, before, decodeErrors, 1, 2*time.Second)
		r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
		if n := len(r.w.history()) - received; n != 1 {
			t.Errorf("%d states after a bad payload and a bid, want only the bid's", n)
		}
		if st := r.stats(t); st.StreamsOpened != opened {
			t.Errorf("a bad payload replaced the stream: %d streams opened, want %d", st.StreamsOpened, opened)
		}
		var after metrics.SSEReport
		getJSON(t, gatewaySSEMetrics, &after)
		if after.Reliability.ErrorCount <= sse.Reliability.ErrorCount {
			t.Errorf("/metrics/sse error_count %d after a bad payload, was %d", after.Reliability.ErrorCount, sse.Reliability.ErrorCount)
		}
	})

	t.Run("10 MiB event", func(t *testing.T) {
		before := scrape(t)
		opened := r.stats(t).StreamsOpened
		if err := r.sim.SendRaw(r.id, event, strings.Repeat("x", 10<<20)); err != nil {
			t.Fatal(err)
		}
		// The reader cannot find the end of an oversized event without
		// buffering it, so it drops the stream and opens another.
		eventually(t, 3*time.Second, "a new stream after the oversized event", func() bool {
			return r.stats(t).StreamsOpened > opened
		})
		if n := grew(t, before, failures("too_large")); n != 1 {
			t.Errorf("%s grew by %v, want 1", failures("too_large"), n)
		}
		// A bid right after the reconnect may come by its reconcile; the
		// next by the stream.
		r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(3*time.Second), "sse", "reconcile")
		r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
	})

	variants := []struct {
		name string
		wire nellissim.Wire
	}{
		{"CRLF", nellissim.Wire{CRLF: true}},
		{"comments", nellissim.Wire{Comments: true}},
		{"BOM", nellissim.Wire{BOM: true}},
		{"currentPrice", nellissim.Wire{PriceKey: "currentPrice"}},
		{"current_bid", nellissim.Wire{PriceKey: "current_bid"}},
		{"numbers as strings", nellissim.Wire{NumbersAsStrings: true}},
		{"all at once", nellissim.Wire{CRLF: true, Comments: true, BOM: true, PriceKey: "currentPrice", NumbersAsStrings: true}},
	}
	for _, v := range variants {
		t.Run("wire "+v.name, func(t *testing.T) {
			if err := r.sim.SetWire(v.wire); err != nil {
				t.Fatal(err)
			}
			if v.wire.BOM {
				// A BOM starts a stream: reconnect, and let the new
				// stream's reconcile pass so that a bid can only come by
				// the stream.
				st := r.stats(t)
				if err := r.sim.DropStreams(r.id); err != nil {
					t.Fatal(err)
				}
				eventually(t, 3*time.Second, "a stream starting with a BOM, and its reconcile", func() bool {
					now := r.stats(t)
					return now.StreamsOpened > st.StreamsOpened && snapshotRequests(now) > snapshotRequests(st)
				})
			}
			for range 2 {
				r.w.awaitBid(t, r.bids.bid(t), time.Now().Add(2*time.Second), "sse")
			}
		})
	}
	if err := r.sim.SetWire(nellissim.Wire{}); err != nil {
		t.Fatal(err)
	}
	r.w.checkHistory(t, r.before)
}

// TestFaultUpstreamSlowDrip: the stream sends one byte a second. No byte
// is ever missing for a stall timeout, but no whole line arrives for three
// of them (with stall_timeout 2s here: 6s, while a 9-byte event takes 8s),
// so the gateway calls the stream stalled ("bytes trickling"), replaces
// it, and the reconcile on reconnect brings the bid the drip held back.
func TestFaultUpstreamSlowDrip(t *testing.T) {
	r := newRig(t, "stall_timeout 2s")
	before := scrape(t)
	opened := r.stats(t).StreamsOpened
	if err := r.sim.SlowDrip(r.id, true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.sim.SlowDrip(r.id, false) }()
	dripping := time.Now()
	// An unnamed event, 9 bytes on the wire, and a bid behind it.
	if err := r.sim.SendRaw(r.id, "", "x"); err != nil {
		t.Fatal(err)
	}
	bid := r.bids.bid(t)

	stalled := awaitGrowth(t, before, failures("stall"), 1, 12*time.Second)
	t.Logf("the dripping stream was called stalled after %v", stalled.Sub(dripping).Round(time.Millisecond))
	if stalled.Sub(dripping) < 2*time.Second {
		t.Errorf("stalled after %v: sooner than the byte watchdog allows, the drip was not in effect", stalled.Sub(dripping))
	}
	s := r.w.awaitBid(t, bid, time.Now().Add(5*time.Second), "reconcile", "poll")
	t.Logf("the bid held back by the drip came by %s after %v", s.source, s.at.Sub(dripping).Round(time.Millisecond))
	eventually(t, 5*time.Second, "the dripping stream to be replaced", func() bool {
		return r.stats(t).StreamsOpened > opened
	})
	r.w.checkHistory(t, r.before)
}

// TestFaultUpstreamRefused: nothing listens at the SSE endpoint; prices
// still move, by snapshots.
func TestFaultUpstreamRefused(t *testing.T) {
	sim, simURL := newSimulator(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	startGateway(t, sim, refused, simURL, "poll_interval 500ms")
	before := scrape(t)
	lot := sim.Auctions()[0]
	b := &bidder{sim: sim, id: lot.ID}
	w := watch(t, lot.ID)
	w.await(t, float64(lot.CurrentBid), time.Now().Add(5*time.Second))
	for range 3 {
		// A fallback poll, or the reconcile of the breaker opening.
		s := w.awaitBid(t, b.bid(t), time.Now().Add(3*time.Second), "poll", "reconcile")
		t.Logf("change without a stream: %v", s)
	}
	awaitGrowth(t, before, failures("dial"), 1, 3*time.Second)
	awaitGrowth(t, before, fallbackActivations, 1, 10*time.Second)
	var sse metrics.SSEReport
	getJSON(t, gatewaySSEMetrics, &sse)
	if sse.Connections.Failed == 0 || sse.Connections.Successful != 0 {
		t.Errorf("/metrics/sse connections %+v, want only failures", sse.Connections)
	}
	w.checkHistory(t, before)
}

// TestFaultGracefulShutdown: stopping the gateway (a config without the
// app) closes every client with 1001, going away, and the upstream stream.
func TestFaultGracefulShutdown(t *testing.T) {
	r := newRig(t, "")
	other := watch(t, r.id)
	other.await(t, float64(lotNow(t, r.sim, r.id).CurrentBid), time.Now().Add(2*time.Second))
	r.tester.InitServer(emptyConfig, "caddyfile")
	for i, w := range []*watcher{r.w, other} {
		err := w.awaitEnd(t, 3*time.Second)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("client %d: the socket ended with %v, want close code 1001", i, err)
		}
	}
	eventually(t, 3*time.Second, "the upstream stream to close", func() bool {
		return r.stats(t).StreamsOpen == 0
	})
}
