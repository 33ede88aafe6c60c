package bidding

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/clock/clocktest"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/nellissim"
)

// t0 is when the simulated auctions start, by Nellis's clock; not on a
// whole second, so Date headers truncate.
var t0 = time.Date(2026, 11, 27, 8, 0, 0, 300_000_000, time.UTC)

// rig is a simulated Nellis (its own fake clock, Date headers from it), a
// fake feed published from the simulator's state, a fake relay and an
// engine on a fake local clock that may be skewed from Nellis's.
type rig struct {
	t      *testing.T
	sim    *nellissim.Simulator
	client *nellis.Client
	nellis *clocktest.Clock // Nellis's clock
	local  *clocktest.Clock // the gateway's
	feed   *fakeFeed
	dir    *fakeDirectory
	rep    *fakeReporter
	server *ServerClock
	engine *Engine
	lots   []nellissim.Auction

	mu   sync.Mutex
	sent []sentBid // every bid that reached the simulator
	maxR int       // MaxReached hook calls
}

// sentBid is a bid as Nellis saw it.
type sentBid struct {
	user      string
	amount    int
	at        time.Time     // Nellis's clock
	remaining time.Duration // before the bid, by Nellis's clock
}

type rigOptions struct {
	cfg      Config
	skew     time.Duration // local clock minus Nellis's
	auctions int
	placer   func(Placer) Placer // wraps the client
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	return newRigWith(t, o, nil)
}

// newRigWith lets the test adjust the engine's options.
func newRigWith(t *testing.T, o rigOptions, adjust func(*Options)) *rig {
	t.Helper()
	r := &rig{t: t, nellis: clocktest.NewClock(t0), local: clocktest.NewClock(t0.Add(o.skew))}
	if o.auctions == 0 {
		o.auctions = 2
	}
	r.sim = nellissim.New(nellissim.Config{Seed: 7, Auctions: o.auctions, AuctionLength: 3 * time.Minute, Now: r.nellis.Now})
	srv := httptest.NewServer(http.HandlerFunc(r.serveNellis))
	t.Cleanup(func() {
		r.engine.Close()
		srv.Close()
		r.sim.Close()
	})
	var err error
	r.client, err = nellis.NewClient(nellis.ClientConfig{APIEndpoint: srv.URL, Format: nellis.FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.client.CloseIdleConnections)
	r.lots = r.sim.Auctions()
	r.feed = newFakeFeed(r)
	r.dir = &fakeDirectory{watchers: make(map[int64][]Watcher)}
	r.rep = &fakeReporter{}
	r.server = &ServerClock{}
	var placer Placer = r.client
	if o.placer != nil {
		placer = o.placer(placer)
	}
	opts := Options{
		Placer: placer, Feed: r.feed, Directory: r.dir, Reporter: r.rep,
		Clock: r.local, ServerClock: r.server,
		Hooks: Hooks{MaxReached: func(string) { r.mu.Lock(); r.maxR++; r.mu.Unlock() }},
	}
	if adjust != nil {
		adjust(&opts)
	}
	r.engine, err = New(o.cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// serveNellis is the simulator with Date headers by Nellis's clock, and a
// record of every bid it is sent.
func (r *rig) serveNellis(w http.ResponseWriter, req *http.Request) {
	now := r.nellis.Now()
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	if req.Method == http.MethodPost && req.URL.Path == "/api/bids" {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		var b struct {
			ProductID int64 `json:"productId"`
			Bid       int   `json:"bid"`
		}
		_ = json.Unmarshal(body, &b)
		user := ""
		if c, err := req.Cookie("sim_user"); err == nil {
			user = c.Value
		}
		lot := r.lot(b.ProductID)
		r.mu.Lock()
		r.sent = append(r.sent, sentBid{user: user, amount: b.Bid, at: now, remaining: lot.CloseTime.Sub(now)})
		r.mu.Unlock()
	}
	r.sim.ServeHTTP(w, req)
}

func (r *rig) lot(id int64) nellissim.Auction {
	for _, a := range r.sim.Auctions() {
		if a.ID == id {
			return a
		}
	}
	r.t.Fatalf("no lot %d", id)
	return nellissim.Auction{}
}

func (r *rig) bidsSent() []sentBid {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sentBid(nil), r.sent...)
}

// advance moves both clocks, then waits for the engine to settle.
func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	r.nellis.Advance(d)
	r.local.Advance(d)
	r.settle()
}

// settle waits until the engine has nothing left to do at the current
// fake time: no look queued, no bid in flight, no timer due.
func (r *rig) settle() {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !r.quiescent() {
		if time.Now().After(deadline) {
			r.t.Fatal("engine did not settle")
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *rig) quiescent() bool {
	e := r.engine
	if e.active.Load() != 0 {
		return false
	}
	now := r.local.Now().UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.workers {
		if at := w.armed.Load(); at != 0 && at <= now {
			return false
		}
	}
	return e.active.Load() == 0
}

// watch makes user auto-bid on a lot and tells the engine.
func (r *rig) watch(productID int64, w Watcher) {
	r.dir.set(productID, w)
	r.engine.Refresh(productID)
	r.settle()
}

// rivalBid places a jump bid in the rival's name and publishes the change.
func (r *rig) rivalBid(productID int64, amount int) {
	r.t.Helper()
	if err := r.sim.EmitBid(productID, amount, "rival"); err != nil {
		r.t.Fatal(err)
	}
	r.publish(productID)
}

// proxyBid places a bid through the bid API in bidder's name, as another
// Nellis user setting a maximum.
func (r *rig) proxyBid(productID int64, amount int, bidder string) {
	r.t.Helper()
	res, err := r.client.PlaceBid(context.Background(), productID, amount, "sim_user="+bidder)
	if err != nil || !res.Outcome.Placed() {
		r.t.Fatalf("proxy bid: %+v %v", res, err)
	}
	r.publish(productID)
}

// publish hands the engine the lot's current state, as a live event.
func (r *rig) publish(productID int64) {
	r.t.Helper()
	r.feed.publish(productID, hub.SourceSSE, "")
	r.settle()
}

func (r *rig) state(user, auctionID string) State {
	r.t.Helper()
	s, ok := r.engine.State(user, auctionID)
	if !ok {
		r.t.Fatalf("no state for %s/%s", user, auctionID)
	}
	return s
}

// fakeFeed publishes the simulator's lots as hub changes.
type fakeFeed struct {
	r    *rig
	mu   sync.Mutex
	seq  uint64
	subs map[int64]map[int]hub.Subscriber
	next int
	last map[int64]*hub.Change
}

func newFakeFeed(r *rig) *fakeFeed {
	return &fakeFeed{r: r, subs: make(map[int64]map[int]hub.Subscriber), last: make(map[int64]*hub.Change)}
}

func (f *fakeFeed) Subscribe(productID int64, s hub.Subscriber) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs[productID] == nil {
		f.subs[productID] = make(map[int]hub.Subscriber)
	}
	key := f.next
	f.next++
	f.subs[productID][key] = s
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs[productID], key)
	}
}

func (f *fakeFeed) State(productID int64) (*hub.Change, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.last[productID]
	return c, ok
}

func (f *fakeFeed) subscribed(productID int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs[productID]) > 0
}

// publish builds the product from the simulator (the user state of
// winningFor when given, as a snapshot fetched with their cookies) and
// delivers it.
func (f *fakeFeed) publish(productID int64, source hub.Source, winningFor string) {
	a := f.r.lot(productID)
	status := "open"
	if a.IsClosed {
		status = "closed"
	}
	f.mu.Lock()
	f.seq++
	c := &hub.Change{
		ProductID: productID, Epoch: "e1", Seq: f.seq, Source: source, ReceivedAt: f.r.local.Now(),
		Product: nellis.Product{
			ID: productID, CurrentBid: float64(a.CurrentBid), NextBid: float64(a.NextBid), BidCount: a.BidCount,
			BidderCount: a.BidderCount, IsClosed: a.IsClosed, MarketStatus: status, CloseTime: a.CloseTime,
			ExtensionInterval: nellis.DefaultExtensionInterval, LastBidder: a.Leader,
		},
	}
	if winningFor != "" {
		c.User = &hub.UserState{Owner: winningFor + "-key", IsWinning: a.Leader == winningFor}
	}
	f.last[productID] = c
	subs := make([]hub.Subscriber, 0, len(f.subs[productID]))
	for _, s := range f.subs[productID] {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		s.Deliver(c)
	}
}

// fakeDirectory is the relay's list of auto-bidders.
type fakeDirectory struct {
	mu       sync.Mutex
	watchers map[int64][]Watcher
}

func (d *fakeDirectory) AutoBidders(productID int64) []Watcher {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Watcher
	for _, w := range d.watchers[productID] {
		if w.Config.AutoBid {
			out = append(out, w)
		}
	}
	return out
}

// set adds or replaces the user's watcher of a product.
func (d *fakeDirectory) set(productID int64, w Watcher) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := d.watchers[productID]
	for i := range list {
		if list[i].User == w.User && list[i].AuctionID == w.AuctionID {
			list[i] = w
			return
		}
	}
	d.watchers[productID] = append(list, w)
}

func (d *fakeDirectory) remove(productID int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.watchers, productID)
}

// fakeReporter keeps every state reported.
type fakeReporter struct {
	mu     sync.Mutex
	states []State
}

func (f *fakeReporter) ReportAutoBid(s State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, s)
}

func (f *fakeReporter) all(user, auctionID string) []State {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []State
	for _, s := range f.states {
		if s.User == user && s.AuctionID == auctionID {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeReporter) last(user, auctionID string) State {
	all := f.all(user, auctionID)
	if len(all) == 0 {
		return State{}
	}
	return all[len(all)-1]
}

func (f *fakeReporter) saw(user, auctionID, status, text string) bool {
	for _, s := range f.all(user, auctionID) {
		if s.Status == status && strings.Contains(s.Message, text) {
			return true
		}
	}
	return false
}

func auctionID(id int64) string { return strconv.FormatInt(id, 10) }

// nopPlacer refuses to be called.
type nopPlacer struct{}

func (nopPlacer) PlaceBid(context.Context, int64, int, string) (nellis.BidResult, error) {
	panic("nopPlacer called")
}

// Since lets the fake feed serve a relay too; it keeps no history.
func (f *fakeFeed) Since(int64, string, uint64) ([]*hub.Change, bool) { return nil, false }

// waitSeen waits until the engine has looked at the feed's latest change.
func (r *rig) waitSeen(productID int64) {
	r.t.Helper()
	want, _ := r.feed.State(productID)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.engine.mu.Lock()
		v := r.engine.views[productID]
		seen := v != nil && v.change == want
		r.engine.mu.Unlock()
		if seen {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatal("the engine never looked at the change")
		}
		time.Sleep(time.Millisecond)
	}
}
