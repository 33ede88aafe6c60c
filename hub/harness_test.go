package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/nellis-edge/gateway/clock/clocktest"
	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
)

// waitTimeout bounds every wait for the feed's goroutine; tests never sleep
// to synchronise, they wait for what the feed does.
const waitTimeout = 5 * time.Second

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fakeStream is a Stream the test drives through its observer, as
// sseupstream's goroutine would.
type fakeStream struct {
	id     int64
	obs    sseupstream.Observer
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	updates  []sseupstream.Config
	lastByte time.Time // zero: t0
}

func (s *fakeStream) Close()               { s.once.Do(func() { close(s.closed) }) }
func (s *fakeStream) SessionID() string    { return "sess-1" }
func (s *fakeStream) LastEvent() time.Time { return t0 }
func (s *fakeStream) LastByte() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastByte.IsZero() {
		return t0
	}
	return s.lastByte
}

// pinged plays a byte (a ping) arriving at at.
func (s *fakeStream) pinged(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastByte = at
}
func (s *fakeStream) UpdateConfig(cfg sseupstream.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates = append(s.updates, cfg)
}

func (s *fakeStream) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

type fakeOpener struct {
	mu      sync.Mutex
	streams []*fakeStream
	opened  chan *fakeStream
}

func (o *fakeOpener) open(_ sseupstream.Config, id int64, obs sseupstream.Observer) Stream {
	s := &fakeStream{id: id, obs: obs, closed: make(chan struct{})}
	o.mu.Lock()
	o.streams = append(o.streams, s)
	o.mu.Unlock()
	o.opened <- s
	return s
}

func (o *fakeOpener) count() (opened, open int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.streams {
		if !s.isClosed() {
			open++
		}
	}
	return len(o.streams), open
}

// fakeFetcher answers snapshots from an "upstream truth" the test sets.
type fakeFetcher struct {
	mu      sync.Mutex
	state   map[int64]nellis.Patch
	err     error
	cookies []string
	gate    chan struct{} // when set, each fetch waits for it to be closed
}

func (f *fakeFetcher) set(id int64, p nellis.Patch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state[id] = p
}

func (f *fakeFetcher) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeFetcher) Snapshot(ctx context.Context, id int64, cookies string) (nellis.Snapshot, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nellis.Snapshot{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cookies = append(f.cookies, cookies)
	if f.err != nil {
		return nellis.Snapshot{}, f.err
	}
	p, ok := f.state[id]
	if !ok {
		p = lot(id, 100, 4)
	}
	return nellis.Snapshot{Patch: p, Format: nellis.FormatJSON}, nil
}

// lot is a snapshot of an open lot closing in an hour from t0.
func lot(id int64, price float64, bids int) nellis.Patch {
	return nellis.Patch{
		ProductID: id, Title: ptr("Drill"), CurrentBid: ptr(price), BidCount: ptr(bids),
		MarketStatus: ptr("open"), CloseTime: ptr(t0.Add(time.Hour)),
	}
}

type pollResult struct {
	id     int64
	source Source
	err    error
}

// recorder is a well-behaved Subscriber: it queues and returns.
type recorder struct{ ch chan *Change }

func newRecorder() *recorder          { return &recorder{ch: make(chan *Change, 1000)} }
func (r *recorder) Deliver(c *Change) { r.ch <- c }

type env struct {
	t           *testing.T
	clk         *clocktest.Clock
	op          *fakeOpener
	ft          *fakeFetcher
	h           *Hub
	polls       chan pollResult
	transitions chan fallback.Transition
}

// newEnv starts a hub on fakes. Its limiter is generous unless cfg says
// otherwise, so that back-to-back fetches at one fake instant never wait for
// a token (the limiter has its own tests).
func newEnv(t *testing.T, cfg Config, opts ...func(*Deps)) *env {
	t.Helper()
	e := &env{
		t:           t,
		clk:         clocktest.NewClock(t0),
		op:          &fakeOpener{opened: make(chan *fakeStream, 100)},
		ft:          &fakeFetcher{state: make(map[int64]nellis.Patch)},
		polls:       make(chan pollResult, 1000),
		transitions: make(chan fallback.Transition, 100),
	}
	if cfg.Limiter == (fallback.LimiterConfig{}) {
		cfg.Limiter = fallback.LimiterConfig{Rate: 1e6, Burst: 1000}
	}
	if cfg.SSE.Endpoint == "" {
		cfg.SSE.Endpoint = "http://sse.test"
	}
	deps := Deps{
		Snapshots:  e.ft,
		Cookies:    func(int64) (string, string) { return "owner-1", "session=secret" },
		OpenStream: e.op.open,
		Clock:      e.clk,
		Rand:       func() float64 { return 0.5 }, // no jitter: exact intervals
		Hooks: Hooks{
			PollResult: func(id int64, src Source, _ time.Duration, err error) {
				e.polls <- pollResult{id, src, err}
			},
			BreakerTransition: func(_ int64, tr fallback.Transition) { e.transitions <- tr },
		},
	}
	for _, o := range opts {
		o(&deps)
	}
	e.h = New(cfg, deps)
	t.Cleanup(e.h.Close)
	return e
}

// logsAtInfo has the hub log into the returned logs from Info up.
func logsAtInfo() (func(*Deps), *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	return func(d *Deps) { d.Logger = zap.New(core) }, logs
}

func (e *env) waitOpened() *fakeStream {
	e.t.Helper()
	select {
	case s := <-e.op.opened:
		return s
	case <-time.After(waitTimeout):
		e.t.Fatal("no stream opened")
		return nil
	}
}

func (e *env) noOpen() {
	e.t.Helper()
	select {
	case s := <-e.op.opened:
		e.t.Fatalf("unexpected stream opened for product %d", s.id)
	default:
	}
}

func (e *env) waitClosed(s *fakeStream) {
	e.t.Helper()
	select {
	case <-s.closed:
	case <-time.After(waitTimeout):
		e.t.Fatal("stream not closed")
	}
}

func (e *env) waitPoll(src Source) pollResult {
	e.t.Helper()
	select {
	case p := <-e.polls:
		if p.source != src {
			e.t.Fatalf("fetch of source %q, want %q", p.source, src)
		}
		return p
	case <-time.After(waitTimeout):
		e.t.Fatalf("no %s fetch", src)
		return pollResult{}
	}
}

func (e *env) noPoll() {
	e.t.Helper()
	select {
	case p := <-e.polls:
		e.t.Fatalf("unexpected %s fetch", p.source)
	default:
	}
}

func (e *env) waitTransition(to fallback.BreakerState) {
	e.t.Helper()
	select {
	case tr := <-e.transitions:
		if tr.To != to {
			e.t.Fatalf("breaker went %v>%v (%s), want to %v", tr.From, tr.To, tr.Reason, to)
		}
	case <-time.After(waitTimeout):
		e.t.Fatalf("breaker did not go %v", to)
	}
}

func (e *env) waitChange(r *recorder) *Change {
	e.t.Helper()
	select {
	case c := <-r.ch:
		return c
	case <-time.After(waitTimeout):
		e.t.Fatal("no change delivered")
		return nil
	}
}

func (e *env) noChange(r *recorder) {
	e.t.Helper()
	select {
	case c := <-r.ch:
		e.t.Fatalf("unexpected change seq %d from %s: %+v", c.Seq, c.Source, c.Product)
	default:
	}
}

// waitStatus waits until productID's status satisfies ok. It polls a
// condition the feed's goroutine publishes; it does not sleep to let time
// pass.
func (e *env) waitStatus(productID int64, what string, ok func(FeedStatus) bool) FeedStatus {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, s := range e.h.Status() {
			if s.ProductID == productID && ok(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("product %d: status never %s; last %+v", productID, what, e.h.Status())
		}
		time.Sleep(time.Millisecond)
	}
}

// eventually waits for a condition another goroutine makes true.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(waitTimeout); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("never: %s", what)
		}
	}
}

func (e *env) waitGone(productID int64) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("feed %d gone from the hub", productID), func() bool {
		for _, s := range e.h.Status() {
			if s.ProductID == productID {
				return false
			}
		}
		return true
	})
}

// openFeed subscribes a recorder to productID for the rest of the test and
// waits for the feed's stream, its first poll and the first change.
func (e *env) openFeed(productID int64) (*recorder, *fakeStream, *Change) {
	e.t.Helper()
	r := newRecorder()
	e.t.Cleanup(e.h.Subscribe(productID, r))
	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	first := e.waitChange(r)
	return r, s, first
}

// healthyFeed is openFeed with the stream then made healthy.
func (e *env) healthyFeed(productID int64) (*recorder, *fakeStream, *Change) {
	e.t.Helper()
	r, s, first := e.openFeed(productID)
	e.makeHealthy(s)
	return r, s, first
}

// makeHealthy plays a stream connecting and pinging, and waits for the
// reconcile fetch that follows the connect.
func (e *env) makeHealthy(s *fakeStream) {
	e.t.Helper()
	s.obs.StreamUp(s.id)
	s.obs.StreamEvent(sseupstream.Event{Kind: sseupstream.Ping, ProductID: s.id, ReceivedAt: e.clk.Now()})
	e.waitPoll(SourceReconcile)
	e.waitStatus(s.id, "on sse", func(st FeedStatus) bool { return st.Source == "sse" })
}

// polledPrice moves productID's upstream price, lets the 2s poll interval
// pass and checks that r hears the new price from that poll.
func (e *env) polledPrice(r *recorder, productID int64, price float64, bids int, what string) {
	e.t.Helper()
	e.ft.set(productID, lot(productID, price, bids))
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	if c := e.waitChange(r); c.Product.CurrentBid != price || c.Source != SourcePoll {
		e.t.Fatalf("%s: %v %s, want %v from a poll", what, c.Product.CurrentBid, c.Source, price)
	}
}

func (e *env) bid(s *fakeStream, price float64, bids int) {
	s.obs.StreamEvent(sseupstream.Event{
		Kind: sseupstream.Bid, ProductID: s.id, Name: "ch_product_bids:x",
		Patch: nellis.Patch{ProductID: s.id, CurrentBid: ptr(price), BidCount: ptr(bids)}, ReceivedAt: e.clk.Now(),
	})
}

func sseConfig() Config { return Config{UseSSE: true} }
