package wsrelay

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
)

// fakeFeeds stands in for the hub: it records subscriptions and delivers
// published changes one at a time (deliverMu, as a feed's goroutine does)
// outside the lock State takes, as a feed does: the relay reads State
// while it pushes a state, and a push may run while a change is fanned
// out.
type fakeFeeds struct {
	deliverMu   sync.Mutex // held across a publish's deliveries
	mu          sync.Mutex
	subs        map[int64]map[*fakeSub]struct{}
	subscribes  map[int64]int // Subscribe calls per product, over the test
	states      map[int64]*hub.Change
	history     map[int64][]*hub.Change
	prioritized []int64 // Prioritize calls, in order
}

func (f *fakeFeeds) Prioritize(productID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prioritized = append(f.prioritized, productID)
}

func (f *fakeFeeds) prioritizedProducts() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.prioritized...)
}

type fakeSub struct{ s hub.Subscriber }

func newFakeFeeds() *fakeFeeds {
	return &fakeFeeds{
		subs:       make(map[int64]map[*fakeSub]struct{}),
		subscribes: make(map[int64]int),
		states:     make(map[int64]*hub.Change),
		history:    make(map[int64][]*hub.Change),
	}
}

func (f *fakeFeeds) Subscribe(productID int64, s hub.Subscriber) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	sub := &fakeSub{s}
	if f.subs[productID] == nil {
		f.subs[productID] = make(map[*fakeSub]struct{})
	}
	f.subs[productID][sub] = struct{}{}
	f.subscribes[productID]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs[productID], sub)
	}
}

func (f *fakeFeeds) State(productID int64) (*hub.Change, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.states[productID]
	return c, ok
}

// Since keeps every change of the current epoch except those trimmed.
func (f *fakeFeeds) Since(productID int64, epoch string, seq uint64) ([]*hub.Change, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.history[productID]
	if len(h) == 0 || h[0].Epoch != epoch || seq+1 < h[0].Seq {
		return nil, false
	}
	var out []*hub.Change
	for _, c := range h {
		if c.Seq > seq {
			out = append(out, c)
		}
	}
	return out, true
}

// trim forgets all but the last n changes of a product.
func (f *fakeFeeds) trim(productID int64, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.history[productID]
	if len(h) > n {
		f.history[productID] = h[len(h)-n:]
	}
}

func (f *fakeFeeds) publish(c *hub.Change) {
	f.deliverMu.Lock()
	defer f.deliverMu.Unlock()
	f.mu.Lock()
	f.states[c.ProductID] = c
	f.history[c.ProductID] = append(f.history[c.ProductID], c)
	subs := make([]*fakeSub, 0, len(f.subs[c.ProductID]))
	for sub := range f.subs[c.ProductID] {
		subs = append(subs, sub)
	}
	f.mu.Unlock()
	for _, sub := range subs {
		sub.s.Deliver(c)
	}
}

func (f *fakeFeeds) subscribers(productID int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs[productID])
}

func (f *fakeFeeds) subscribeCalls(productID int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subscribes[productID]
}

func newChange(t testing.TB, p nellis.Product, epoch string, seq uint64) *hub.Change {
	t.Helper()
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return &hub.Change{ProductID: p.ID, Epoch: epoch, Seq: seq, Source: hub.SourceSSE,
		ReceivedAt: time.Now(), Product: p, JSON: data}
}

func product(id int64, price float64) nellis.Product {
	return nellis.Product{ID: id, Title: "lot", CurrentBid: price, NextBid: price + 1, BidCount: 1,
		BidderCount: 1, MarketStatus: "open", CloseTime: time.Now().Add(time.Hour)}
}

// fixture is a relay behind a test server.
type fixture struct {
	t     testing.TB
	relay *Relay
	feeds *fakeFeeds
	srv   *httptest.Server
}

const (
	tokenAlice = "alice-token"
	tokenBob   = "bob-token"
)

func testConfig() Config {
	return Config{Users: map[string]string{"alice": tokenAlice, "bob": tokenBob}, AllowedOrigins: []string{"chrome-extension://good"}}
}

// newFixture starts a relay; opts.Feeds defaults to a fake.
func newFixture(t testing.TB, cfg Config, opts Options) *fixture {
	t.Helper()
	return newFixtureWith(t, cfg, opts, nil)
}

// newFixtureWith lets the test adjust the server before it starts.
func newFixtureWith(t testing.TB, cfg Config, opts Options, adjust func(*httptest.Server)) *fixture {
	t.Helper()
	f := &fixture{t: t}
	if opts.Feeds == nil {
		f.feeds = newFakeFeeds()
		opts.Feeds = f.feeds
	}
	r, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.relay = r
	f.srv = httptest.NewUnstartedServer(f.mux())
	if adjust != nil {
		adjust(f.srv)
	}
	f.srv.Start()
	t.Cleanup(f.close)
	return f
}

func (f *fixture) mux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", f.relay.ServeWS)
	mux.HandleFunc("/{$}", f.relay.ServeWS) // older extensions' path
	mux.Handle("/api/", f.relay.APIHandler())
	mux.Handle("/health", f.relay.APIHandler())
	mux.Handle("/health/", f.relay.APIHandler())
	return mux
}

func (f *fixture) close() {
	f.relay.Shutdown()
	f.srv.Close()
}

func (f *fixture) wsURL() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws" }

// client is a test WebSocket client.
type client struct {
	t  testing.TB
	ws *websocket.Conn
}

func (f *fixture) dial(header http.Header) *client {
	f.t.Helper()
	return dialWith(f.t, websocket.DefaultDialer, f.wsURL(), header)
}

// dialWith dials url with dialer; the socket is closed when the test ends.
func dialWith(t testing.TB, dialer *websocket.Dialer, url string, header http.Header) *client {
	t.Helper()
	c, resp, err := dialer.Dial(url, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	cl := &client{t: t, ws: c}
	t.Cleanup(func() { c.Close() })
	return cl
}

// connect dials and reads the two connect-time messages.
func (f *fixture) connect() *client {
	f.t.Helper()
	return f.dial(nil).greeted()
}

// greeted reads the two connect-time messages.
func (c *client) greeted() *client {
	c.t.Helper()
	c.expectType("connected")
	c.expectType("monitoredAuctions")
	return c
}

// login connects and authenticates with token.
func (f *fixture) login(token string) *client {
	f.t.Helper()
	c := f.connect()
	c.authenticate(token)
	return c
}

// authenticate signs the socket in as token's user.
func (c *client) authenticate(token string) {
	c.t.Helper()
	c.send(map[string]any{"type": "authenticate", "token": token, "requestId": "auth"})
	if m := c.expectType("authenticated"); m["success"] != true {
		c.t.Fatalf("authenticate: %v", m)
	}
	c.expectType("monitoredAuctions")
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// readRaw returns the next message that is not a heartbeat.
func (c *client) readRaw() []byte {
	c.t.Helper()
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if !strings.HasPrefix(string(data), `{"type":"heartbeat"`) {
			return data
		}
	}
}

// readStates reads until the connection ends, passing on the seq of every
// auctionState, and returns the read error that ended it; it is for a
// goroutine of its own, so it never fails the test. It reads as an
// extension does, with no deadline: the one readRaw left on the
// connection (5 s from the client's last reply during set-up) would end
// it mid-test on a loaded machine, and a reader that stops reading looks
// like a change that never came.
func (c *client) readStates(got func(seq uint64)) error {
	_ = c.ws.SetReadDeadline(time.Time{})
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		var m struct {
			Type    string `json:"type"`
			Auction struct {
				Seq uint64 `json:"seq"`
			} `json:"auction"`
		}
		if json.Unmarshal(data, &m) == nil && m.Type == "auctionState" {
			got(m.Auction.Seq)
		}
	}
}

func (c *client) read() map[string]any {
	c.t.Helper()
	data := c.readRaw()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("reply %s: %v", data, err)
	}
	return m
}

func (c *client) expectType(typ string) map[string]any {
	c.t.Helper()
	m := c.read()
	if m["type"] != typ {
		c.t.Fatalf("got %v, want type %q", m, typ)
	}
	return m
}

// expectError reads an error message and checks its text and requestId.
func (c *client) expectError(text string, requestID any) {
	c.t.Helper()
	m := c.expectType("error")
	if m["error"] != text || m["requestId"] != requestID {
		c.t.Fatalf("got %v, want error %q with requestId %v", m, text, requestID)
	}
}

// expectClose reads until the socket closes and returns the close code.
func (c *client) expectClose() int {
	c.t.Helper()
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			c.t.Fatal("socket not closed in time")
		}
		return websocket.CloseAbnormalClosure
	}
}

// roundTrip proves the socket is alive and nothing is queued before the pong.
func (c *client) roundTrip() {
	c.t.Helper()
	c.send(map[string]any{"type": "ping"})
	c.expectType("pong")
}

func sample(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// frozenClock is a settable clock.
type frozenClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *frozenClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *frozenClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
