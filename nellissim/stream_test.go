package nellissim

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

var connectedLine = regexp.MustCompile(`^data: connected [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12},0x[0-9a-f]+-0x[0-9a-f]+\n\n`)

func TestStreamOpensWithConnectedAndPings(t *testing.T) {
	ts := newTestSim(t, Config{PingInterval: 10 * time.Millisecond})
	c := ts.openStream(t, ts.firstLot(t).ID)
	if ct := c.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
	got := c.waitFor(t, "data: ping\n\n", 2)
	if !connectedLine.MatchString(got) {
		t.Errorf("stream does not open with a connected event: %q", truncate(got, 200))
	}
	// Nothing but connected and pings is sent unprompted.
	rest := connectedLine.ReplaceAllString(got, "")
	if strings.ReplaceAll(rest, "data: ping\n\n", "") != "" {
		t.Errorf("unexpected bytes %q", rest)
	}
}

func TestStreamRejectsBadRequests(t *testing.T) {
	ts := newTestSim(t, Config{})
	for path, want := range map[string]int{
		"/live-products?productId=1":   http.StatusNotFound,
		"/live-products?productId=abc": http.StatusBadRequest,
		"/live-products":               http.StatusBadRequest,
	} {
		if status, _, _ := ts.fetch(t, path, nil); status != want {
			t.Errorf("%s: status %d, want %d", path, status, want)
		}
	}
}

// expectedBidFrame is the bid event the wire spec says a lot's state gives.
func expectedBidFrame(a Auction, now time.Time, bidder string, w Wire) string {
	nl := "\n"
	if w.CRLF {
		nl = "\r\n"
	}
	key := "currentBid"
	if w.PriceKey != "" {
		key = w.PriceKey
	}
	num := func(n any) string {
		if w.NumbersAsStrings {
			return fmt.Sprintf(`"%v"`, n)
		}
		return fmt.Sprint(n)
	}
	var b strings.Builder
	if w.Comments {
		b.WriteString(": nellissim" + nl)
	}
	fmt.Fprintf(&b, "event: ch_product_bids:%d%s", a.ID, nl)
	fmt.Fprintf(&b, `data: {"productId":%s,"%s":%s,"bidCount":%s,"lastBidder":"%s","bidderCount":%s,"timeRemaining":%s,"closeTime":"%s"}%s%s`,
		num(a.ID), key, num(a.CurrentBid), num(a.BidCount), bidder, num(a.BidderCount),
		num(int(a.CloseTime.Sub(now)/time.Second)), isoTime(a.CloseTime), nl, nl)
	return b.String()
}

func TestWireVariants(t *testing.T) {
	cases := map[string]Wire{
		"default":          {},
		"crlf":             {CRLF: true},
		"comments":         {Comments: true},
		"bom":              {BOM: true},
		"currentPrice":     {PriceKey: "currentPrice"},
		"current_bid":      {PriceKey: "current_bid"},
		"numbersAsStrings": {NumbersAsStrings: true},
		"all":              {CRLF: true, Comments: true, BOM: true, PriceKey: "current_bid", NumbersAsStrings: true},
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			ts := newTestSim(t, Config{Seed: 5})
			if err := ts.SetWire(w); err != nil {
				t.Fatal(err)
			}
			a := ts.firstLot(t)
			c := ts.openStream(t, a.ID)
			nl := "\n"
			if w.CRLF {
				nl = "\r\n"
			}
			// The connected event is complete before the bid is sent.
			c.waitFor(t, nl+nl, 1)
			if err := ts.EmitBid(a.ID, a.NextBid+9, "rival"); err != nil {
				t.Fatal(err)
			}
			got := c.waitFor(t, "ch_product_bids", 1)
			got = c.waitFor(t, nl+nl, 2)

			prefix := ""
			if w.BOM {
				prefix = "\uFEFF"
			}
			if w.Comments {
				prefix += ": nellissim" + nl
			}
			if !strings.HasPrefix(got, prefix+"data: connected ") {
				t.Errorf("stream starts %q, want %q", truncate(got, 60), prefix+"data: connected ")
			}
			if w.BOM != strings.HasPrefix(got, "\uFEFF") || strings.Count(got, "\uFEFF") > 1 {
				t.Errorf("BOM %v but stream is %q", w.BOM, truncate(got, 40))
			}
			if !w.CRLF && strings.Contains(got, "\r") {
				t.Errorf("carriage return on an LF wire: %q", got)
			}
			want := expectedBidFrame(ts.auction(t, a.ID), ts.clock.Now(), "rival", w)
			if !strings.HasSuffix(got, want) {
				t.Errorf("stream\n%q\nwant it to end with\n%q", got, want)
			}
		})
	}
	ts := newTestSim(t, Config{})
	if err := ts.SetWire(Wire{PriceKey: "price"}); err == nil {
		t.Error("an unknown price key was accepted")
	}
}

func TestLotClosesOnItsOwnOnce(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 9, PingInterval: 5 * time.Millisecond})
	a := ts.firstLot(t)
	c := ts.openStream(t, a.ID)
	c.waitFor(t, "data: ping", 1)

	ts.clock.Set(a.CloseTime)
	got := c.waitFor(t, "event: ch_product_closed:", 1)
	winner := "null"
	if a.Leader != "" {
		winner = `"` + a.Leader + `"`
	}
	want := fmt.Sprintf("event: ch_product_closed:%d\ndata: {\"productId\":%d,\"finalBid\":%d,\"winner\":%s,\"closedAt\":\"%s\"}\n\n",
		a.ID, a.ID, a.CurrentBid, winner, isoTime(a.CloseTime))
	if !strings.Contains(got, want) {
		t.Errorf("stream %q\nlacks %q", got, want)
	}
	// The stream stays up after the close, and the event is not repeated.
	n := strings.Count(got, "data: ping")
	got = c.waitFor(t, "data: ping", n+3)
	if k := strings.Count(got, "ch_product_closed"); k != 1 {
		t.Errorf("closed event sent %d times", k)
	}
	if !ts.auction(t, a.ID).IsClosed {
		t.Error("lot not closed in the listing")
	}
	if err := ts.EmitBid(a.ID, a.NextBid+100, "late"); !errors.Is(err, errAuctionEnded) {
		t.Errorf("bid after close: %v, want %v", err, errAuctionEnded)
	}
}

func TestCloseLotNow(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 9})
	a := ts.Auctions()[2]
	c := ts.openStream(t, a.ID)
	if err := ts.CloseLot(a.ID); err != nil {
		t.Fatal(err)
	}
	got := c.waitFor(t, fmt.Sprintf("event: ch_product_closed:%d\n", a.ID), 1)
	if !strings.Contains(got, `"closedAt":"`+isoTime(ts.clock.Now())+`"`) {
		t.Errorf("closedAt is not now: %q", got)
	}
	if err := ts.CloseLot(1); !errors.Is(err, errUnknownLot) {
		t.Errorf("closing an unknown lot: %v", err)
	}
}

func TestDropStreamsEndsTheBody(t *testing.T) {
	ts := newTestSim(t, Config{})
	lots := ts.Auctions()
	a, b := ts.openStream(t, lots[0].ID), ts.openStream(t, lots[1].ID)
	a.waitFor(t, "\n\n", 1)
	b.waitFor(t, "\n\n", 1)
	if err := ts.DropStreams(lots[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := a.waitEnd(t); !errors.Is(err, io.EOF) {
		t.Errorf("dropped stream ended with %v, want a clean EOF", err)
	}
	// The other product's stream is untouched; id 0 drops it too.
	if err := ts.EmitBid(lots[1].ID, lots[1].NextBid, "rival"); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "ch_product_bids", 1)
	if err := ts.DropStreams(0); err != nil {
		t.Fatal(err)
	}
	if err := b.waitEnd(t); !errors.Is(err, io.EOF) {
		t.Errorf("stream dropped by id 0 ended with %v", err)
	}
	// A new stream opens normally afterwards.
	ts.openStream(t, lots[0].ID).waitFor(t, "data: connected", 1)
}

func TestStallSendsNothingButKeepsTheSocket(t *testing.T) {
	const ping = 10 * time.Millisecond
	ts := newTestSim(t, Config{PingInterval: ping})
	a := ts.firstLot(t)
	c := ts.openStream(t, a.ID)
	c.waitFor(t, "data: ping", 2)
	if err := ts.Stall(a.ID, true); err != nil {
		t.Fatal(err)
	}
	// Let a ping written just before the stall land, then watch the wire
	// stay silent while at least three pings go to every other stream.
	waitPings(t, ts, 1)
	before := len(c.bytes())
	waitPings(t, ts, 3)
	if err := ts.EmitBid(a.ID, a.NextBid, "rival"); err != nil {
		t.Fatal(err)
	}
	waitPings(t, ts, 1)
	if after := c.bytes(); len(after) != before {
		t.Errorf("stalled stream sent %q", after[before:])
	}
	if err := ts.Stall(a.ID, false); err != nil {
		t.Fatal(err)
	}
	// Same connection, alive again; the bid made during the stall is lost.
	got := c.waitFor(t, "data: ping", strings.Count(string(c.bytes()), "data: ping")+1)
	if strings.Contains(got, "ch_product_bids") {
		t.Error("an event sent during the stall arrived afterwards")
	}
}

// waitPings waits until the ping ticker has fired n more times.
func waitPings(t *testing.T, ts *testSim, n int64) {
	t.Helper()
	target := ts.pings.Load() + n
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(waitLimit)
	for ts.pings.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("ping ticker stuck")
		}
		<-tick.C
	}
}

func TestFailStreamsAnswersNTimesThenRecovers(t *testing.T) {
	ts := newTestSim(t, Config{})
	a := ts.firstLot(t)
	if err := ts.FailStreams(a.ID, 2, http.StatusServiceUnavailable); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/live-products?productId=%d", a.ID)
	for i := range 2 {
		if status, _, _ := ts.fetch(t, path, nil); status != http.StatusServiceUnavailable {
			t.Errorf("request %d: status %d, want 503", i+1, status)
		}
	}
	ts.openStream(t, a.ID).waitFor(t, "data: connected", 1)
	st, err := ts.Stats(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.StreamRequests != 3 || st.StreamsOpened != 1 || st.StreamsOpen != 1 {
		t.Errorf("stats %+v, want 3 requests, 1 opened, 1 open", st)
	}
	for _, bad := range [][2]int{{-1, 500}, {1, 99}, {1, 600}} {
		if err := ts.FailStreams(a.ID, bad[0], bad[1]); err == nil {
			t.Errorf("FailStreams(n=%d, status=%d) accepted", bad[0], bad[1])
		}
	}
}

func TestSendRawArrivesVerbatim(t *testing.T) {
	ts := newTestSim(t, Config{})
	a := ts.firstLot(t)
	c := ts.openStream(t, a.ID)
	c.waitFor(t, "\n\n", 1)

	malformed := `{"productId":` + fmt.Sprint(a.ID) + `,"currentBid":` // cut short
	if err := ts.SendRaw(a.ID, "ch_product_bids:"+fmt.Sprint(a.ID), malformed); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "event: ch_product_bids:"+fmt.Sprint(a.ID)+"\ndata: "+malformed+"\n\n", 1)

	huge := strings.Repeat("x", 10<<20)
	if err := ts.SendRaw(a.ID, "", huge); err != nil {
		t.Fatal(err)
	}
	got := c.waitFor(t, huge+"\n\n", 1)
	if !strings.HasSuffix(got, "\ndata: "+huge+"\n\n") {
		t.Error("the 10 MiB payload did not arrive as one data line")
	}
	if err := ts.SendRaw(1, "", "x"); !errors.Is(err, errUnknownLot) {
		t.Errorf("raw event for an unknown product: %v", err)
	}
}

func TestSlowDripWritesByteByByte(t *testing.T) {
	ts := newTestSim(t, Config{})
	ts.dripInterval = 2 * time.Millisecond
	a := ts.firstLot(t)
	c := ts.openStream(t, a.ID)
	c.waitFor(t, "\n\n", 1)
	if err := ts.SlowDrip(0, true); err != nil {
		t.Fatal(err)
	}
	const payload = "drip-drip-drip-drip-drip"
	frame := "data: " + payload + "\n\n"
	c.mu.Lock()
	readsBefore := c.reads
	c.mu.Unlock()
	start := time.Now()
	if err := ts.SendRaw(a.ID, "", payload); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, frame, 1)
	elapsed := time.Since(start)
	if min := time.Duration(len(frame)-1) * ts.dripInterval; elapsed < min {
		t.Errorf("%d bytes arrived in %s, faster than one per %s", len(frame), elapsed, ts.dripInterval)
	}
	c.mu.Lock()
	reads := c.reads - readsBefore
	c.mu.Unlock()
	if reads < len(frame)/2 {
		t.Errorf("frame arrived in %d reads, want about one per byte (%d)", reads, len(frame))
	}
}

func TestSlowConsumerIsDropped(t *testing.T) {
	ts := newTestSim(t, Config{})
	a := ts.firstLot(t)
	ts.mu.Lock()
	l := ts.byID[a.ID]
	st := &stream{lot: l, frames: make(chan []byte, 1), kicked: make(chan struct{})}
	l.streams[st] = struct{}{}
	ts.broadcastLocked(l, []byte("one"))
	ts.broadcastLocked(l, []byte("two")) // the queue is full
	_, still := l.streams[st]
	ts.mu.Unlock()
	if still {
		t.Error("a stream that cannot keep up is still registered")
	}
	select {
	case <-st.kicked:
	default:
		t.Error("the slow stream was not told to end")
	}
	if s, _ := ts.Stats(a.ID); s.StreamsDropped != 1 {
		t.Errorf("dropped count %d, want 1", s.StreamsDropped)
	}
}

func TestCloseEndsOpenStreamsEvenStuckOnes(t *testing.T) {
	clock := newFakeClock()
	sim := New(Config{Now: clock.Now, PingInterval: 5 * time.Millisecond})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	sim.Start()
	ts := &testSim{Simulator: sim, srv: srv, clock: clock}
	lots := ts.Auctions()
	streams := []*sseConn{ts.openStream(t, lots[0].ID), ts.openStream(t, lots[0].ID), ts.openStream(t, lots[1].ID)}
	for _, c := range streams {
		c.waitFor(t, "data: ping", 1)
	}
	// A client that never reads: its handler blocks writing megabytes.
	stuck := ts.get(t, fmt.Sprintf("/live-products?productId=%d", lots[2].ID), nil)
	defer stuck.Body.Close()
	for range 4 {
		if err := sim.SendRaw(lots[2].ID, "", strings.Repeat("y", 8<<20)); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() {
		sim.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(waitLimit):
		t.Fatal("Close did not return with a stuck stream open")
	}
	for _, c := range streams {
		c.waitEnd(t)
	}
	if status, _, _ := ts.fetch(t, fmt.Sprintf("/live-products?productId=%d", lots[0].ID), nil); status != http.StatusServiceUnavailable {
		t.Errorf("stream after Close: status %d, want 503", status)
	}
	sim.Close() // a second Close is harmless
}

// unwrapOnly hides every optional interface, as Caddy's response wrappers
// do, leaving only Unwrap.
type unwrapOnly struct{ w http.ResponseWriter }

func (u unwrapOnly) Header() http.Header         { return u.w.Header() }
func (u unwrapOnly) Write(b []byte) (int, error) { return u.w.Write(b) }
func (u unwrapOnly) WriteHeader(status int)      { u.w.WriteHeader(status) }
func (u unwrapOnly) Unwrap() http.ResponseWriter { return u.w }
func wrapWriters(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(unwrapOnly{w}, r) })
}

func TestStreamFlushesThroughWrappedWriters(t *testing.T) {
	clock := newFakeClock()
	sim := New(Config{Now: clock.Now, PingInterval: 5 * time.Millisecond})
	srv := httptest.NewServer(wrapWriters(sim))
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	sim.Start()
	ts := &testSim{Simulator: sim, srv: srv, clock: clock}
	ts.openStream(t, ts.firstLot(t).ID).waitFor(t, "data: ping\n\n", 2)
}
