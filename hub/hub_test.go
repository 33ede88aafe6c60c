package hub

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFiftySubscribersShareOneStream(t *testing.T) {
	e := newEnv(t, sseConfig())
	e.ft.gate = make(chan struct{}) // every subscriber is in before the first state
	recs := make([]*recorder, 50)
	for i := range recs {
		recs[i] = newRecorder()
		defer e.h.Subscribe(7, recs[i])()
	}
	close(e.ft.gate)
	e.waitOpened()
	e.waitPoll(SourcePoll)
	first := e.waitChange(recs[0])
	if first.Seq != 1 || first.Product.CurrentBid != 100 || first.Source != SourcePoll {
		t.Fatalf("first change: seq %d price %v source %s", first.Seq, first.Product.CurrentBid, first.Source)
	}
	for _, r := range recs[1:] {
		if c := e.waitChange(r); c != first {
			t.Fatalf("subscribers got different changes: %p vs %p", c, first)
		}
	}
	if !strings.Contains(string(first.JSON), `"currentBid":100`) {
		t.Errorf("change JSON %s lacks the price", first.JSON)
	}
	st := e.waitStatus(7, "50 subscribers", func(s FeedStatus) bool { return s.Subscribers == 50 })
	if st.Epoch != first.Epoch || st.Seq != 1 {
		t.Errorf("status epoch/seq %s/%d, want %s/1", st.Epoch, st.Seq, first.Epoch)
	}
	e.noOpen()
	if opened, _ := e.op.count(); opened != 1 {
		t.Fatalf("%d streams opened for 50 subscribers, want 1", opened)
	}
	e.ft.mu.Lock()
	cookie := e.ft.cookies[0]
	e.ft.mu.Unlock()
	if cookie != "session=secret" {
		t.Errorf("snapshot fetched with cookies %q, want the user's", cookie)
	}
}

func TestLingerClosesFeedAndReinterestKeepsIt(t *testing.T) {
	e := newEnv(t, sseConfig())
	r := newRecorder()
	unsub := e.h.Subscribe(7, r)
	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	first := e.waitChange(r)
	e.makeHealthy(s)

	unsub()
	unsub() // idempotent
	st := e.waitStatus(7, "lingering", func(s FeedStatus) bool { return !s.LingerUntil.IsZero() })
	if want := t0.Add(30 * time.Second); !st.LingerUntil.Equal(want) {
		t.Fatalf("linger until %v, want %v", st.LingerUntil, want)
	}

	// Interest comes back within the linger: the feed and its stream stay.
	e.clk.Advance(29 * time.Second)
	r2 := newRecorder()
	unsub2 := e.h.Subscribe(7, r2)
	e.waitStatus(7, "not lingering", func(s FeedStatus) bool { return s.LingerUntil.IsZero() && s.Subscribers == 1 })
	e.clk.Advance(time.Minute)
	e.waitPoll(SourcePoll) // the safety net at t0+30s: the feed ran past the old linger deadline
	if s.isClosed() {
		t.Fatal("stream closed although interest came back within the linger")
	}
	if c, ok := e.h.State(7); !ok || c.Epoch != first.Epoch {
		t.Fatalf("feed recreated during re-interest: %v %q", ok, c.Epoch)
	}

	// The last subscriber leaves for good: after the linger, nothing is left.
	unsub2()
	e.waitStatus(7, "lingering again", func(s FeedStatus) bool { return !s.LingerUntil.IsZero() })
	e.clk.Advance(30 * time.Second)
	e.waitClosed(s)
	e.waitGone(7)
	if _, ok := e.h.State(7); ok {
		t.Fatal("State of a closed feed")
	}

	// New interest opens a new feed with a new epoch.
	r3 := newRecorder()
	defer e.h.Subscribe(7, r3)()
	e.waitOpened()
	if c := e.waitChange(r3); c.Epoch == first.Epoch || c.Seq != 1 {
		t.Fatalf("reopened feed: epoch %q (old %q), seq %d", c.Epoch, first.Epoch, c.Seq)
	}
}

// droppingSubscriber follows the Deliver contract with a one-slot queue
// that nobody drains: it keeps the first change and drops the rest.
type droppingSubscriber struct {
	queue   chan *Change
	dropped atomic.Int64
}

func (d *droppingSubscriber) Deliver(c *Change) {
	select {
	case d.queue <- c:
	default:
		d.dropped.Add(1)
	}
}

// reentrantSubscriber calls back into the hub from Deliver.
type reentrantSubscriber struct {
	h     *Hub
	seen  chan uint64
	unsub func()
}

func (s *reentrantSubscriber) Deliver(c *Change) {
	if st, ok := s.h.State(c.ProductID); ok {
		s.seen <- st.Seq
	}
	if c.Seq == 3 {
		s.unsub()
	}
}

func TestSlowSubscriberCannotBlockTheFeed(t *testing.T) {
	e := newEnv(t, sseConfig())
	e.ft.gate = make(chan struct{}) // all three are in before the first state
	slow := &droppingSubscriber{queue: make(chan *Change, 1)}
	defer e.h.Subscribe(7, slow)()
	re := &reentrantSubscriber{h: e.h, seen: make(chan uint64, 100)}
	re.unsub = e.h.Subscribe(7, re)
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	close(e.ft.gate)

	s := e.waitOpened()
	e.waitPoll(SourcePoll)
	e.waitChange(r)
	e.makeHealthy(s)
	for i := 2; i <= 10; i++ {
		e.bid(s, float64(100+i), 4+i)
		if c := e.waitChange(r); c.Seq != uint64(i) {
			t.Fatalf("fast subscriber got seq %d, want %d", c.Seq, i)
		}
	}
	// The fast subscriber may hear of a change before the slow one does.
	e.eventually("slow subscriber dropped 9", func() bool { return slow.dropped.Load() == 9 })
	if got := len(slow.queue); got != 1 {
		t.Errorf("slow subscriber queued %d, want 1", got)
	}
	if got := len(re.seen); got != 3 {
		t.Errorf("re-entrant subscriber saw %d changes, want 3 (it left at seq 3)", got)
	}
	e.waitStatus(7, "2 subscribers", func(s FeedStatus) bool { return s.Subscribers == 2 })
}

type panickingSubscriber struct{}

func (panickingSubscriber) Deliver(*Change) { panic("relay bug") }

func TestPanickingSubscriberDropsOnlyItsFeed(t *testing.T) {
	e := newEnv(t, Config{})
	other := newRecorder()
	defer e.h.Subscribe(8, other)()
	e.h.Subscribe(7, panickingSubscriber{})
	e.waitGone(7)
	e.waitChange(other) // product 8 carries on

	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	if c := e.waitChange(r); c.Seq != 1 {
		t.Fatalf("fresh feed starts at seq %d", c.Seq)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	e := newEnv(t, sseConfig())
	for id := int64(1); id <= 3; id++ {
		e.h.Subscribe(id, newRecorder())
	}
	streams := []*fakeStream{e.waitOpened(), e.waitOpened(), e.waitOpened()}
	e.h.Close()
	for _, s := range streams {
		if !s.isClosed() {
			t.Fatalf("stream %d open after Close", s.id)
		}
	}
	if len(e.h.Status()) != 0 {
		t.Fatal("feeds left after Close")
	}
	e.h.Subscribe(1, newRecorder())() // a no-op after Close
	e.noOpen()
}
