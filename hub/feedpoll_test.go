package hub

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/settings"
	"github.com/nellis-edge/gateway/sseupstream"
)

// lineFetcher is a steppedFetcher whose lots close when the test says,
// and whose next snapshot of a lot in fail fails.
type lineFetcher struct {
	steppedFetcher
	closes map[int64]time.Time
	mu     sync.Mutex
	fail   map[int64]bool
}

func (f *lineFetcher) Snapshot(ctx context.Context, id int64, c string) (nellis.Snapshot, error) {
	snap, err := f.steppedFetcher.Snapshot(ctx, id, c)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[id] && err == nil {
		delete(f.fail, id)
		return nellis.Snapshot{}, errors.New("nellis: status 502")
	}
	if at, ok := f.closes[id]; ok && err == nil {
		snap.Patch.CloseTime = ptr(at)
	}
	return snap, err
}

// pollLine is a hub polling lots one snapshot at a time: the test sees
// each snapshot asked for (next) and lets it finish (release).
type pollLine struct {
	*env
	ft *lineFetcher
}

func newPollLine(t *testing.T, cfg Config, closes map[int64]time.Time, opts ...func(*Deps)) *pollLine {
	ft := &lineFetcher{steppedFetcher: steppedFetcher{calls: make(chan int64, 100), release: make(chan struct{})}, closes: closes, fail: map[int64]bool{}}
	cfg.Limiter = fallback.LimiterConfig{Rate: 1e6, Burst: 1000, MaxInFlight: 1}
	e := newEnv(t, cfg, append([]func(*Deps){func(d *Deps) { d.Snapshots = ft }}, opts...)...)
	return &pollLine{e, ft}
}

// next waits for the next snapshot asked of Nellis and returns its lot.
func (p *pollLine) next() int64 {
	p.t.Helper()
	select {
	case id := <-p.ft.calls:
		return id
	case <-time.After(waitTimeout):
		p.t.Fatal("no snapshot requested")
		return 0
	}
}

func (p *pollLine) release() { p.ft.release <- struct{}{} }

// waiting waits until n fetches wait for the limiter's one slot.
func (p *pollLine) waiting(n int) {
	p.t.Helper()
	p.eventually("snapshots waiting for the limiter", func() bool { return p.h.limiter.Stats().Waiting == n })
}

// A polled lot whose closing window opens while its poll waits in line
// behind the other polled lots' turns goes next: its watchers have only
// its polls, and in the last minute every change counts.
func TestClosingLotsPollGoesAheadOfTheLine(t *testing.T) {
	closeAt := t0.Add(2 * time.Minute)
	p := newPollLine(t, Config{}, map[int64]time.Time{9: closeAt})
	known := func(id int64) {
		p.next() // its first snapshot
		p.release()
		p.waitStatus(id, "known", func(s FeedStatus) bool { return s.Seq > 0 && !s.NextPoll.IsZero() })
	}
	for _, id := range []int64{1, 2, 3} {
		t.Cleanup(p.h.Subscribe(id, newRecorder()))
		known(id)
	}
	p.clk.Advance(time.Second)
	t.Cleanup(p.h.Subscribe(9, newRecorder()))
	known(9)
	// Every lot polls again 2s after its first snapshot: one holds the
	// slot, the other two wait, and lot 9 joins the line last.
	p.clk.Advance(time.Second)
	p.next()
	p.waiting(2)
	p.clk.Advance(time.Second)
	p.waiting(3)

	p.clk.Advance(closeAt.Sub(p.clk.Now()) - time.Minute) // lot 9's window opens
	p.eventually("lot 9's poll raised", func() bool { return p.h.limiter.Stats().Urgent == 1 })
	p.release()
	if id := p.next(); id != 9 {
		t.Fatalf("after the window opened, lot %d was polled before closing lot 9", id)
	}
	p.release()
	p.next()
	p.release()
	p.next()
	p.release()
}

// A streamed lot's own polls (safety net, hedge) are insurance: while the
// line is long they wait for the lots that have only their polls, however
// early they joined it.
func TestInsurancePollsWaitForPolledLots(t *testing.T) {
	cfg := sseConfig()
	cfg.MaxStreams = 1
	cfg.Poll.Fallback = settings.Duration(30 * time.Second) // as rare as the safety net
	p := newPollLine(t, cfg, nil)
	first := func(id int64) {
		t.Cleanup(p.h.Subscribe(id, newRecorder()))
		if got := p.next(); got != id {
			t.Fatalf("first snapshot of %d, want %d", got, id)
		}
		p.release()
		p.waitStatus(id, "known", func(s FeedStatus) bool { return s.Seq > 0 })
	}
	first(1) // streamed
	s := p.waitOpened()
	first(3) // polled; next poll at +30s
	p.clk.Advance(time.Second)
	s.obs.StreamUp(1)
	p.next() // the reconcile after the connect
	s.obs.StreamEvent(sseupstream.Event{Kind: sseupstream.Ping, ProductID: 1, ReceivedAt: p.clk.Now()})
	p.waitStatus(1, "on sse", func(st FeedStatus) bool { return st.Source == "sse" })
	p.release() // safety-net poll at +31s
	p.waitStatus(1, "safety net planned", func(st FeedStatus) bool { return !st.NextPoll.IsZero() })
	p.clk.Advance(time.Second)
	first(2) // polled; next poll at +32s

	p.clk.Advance(28 * time.Second)
	if got := p.next(); got != 3 {
		t.Fatalf("at +30s lot %d polled, want 3", got)
	}
	p.clk.Advance(time.Second)
	p.waiting(1) // lot 1's safety net
	p.clk.Advance(time.Second)
	p.waiting(2) // lot 2's turn
	p.release()
	if got := p.next(); got != 2 {
		t.Fatalf("lot %d polled next, want polled lot 2 before streamed lot 1's safety net", got)
	}
	p.release()
	if got := p.next(); got != 1 {
		t.Fatalf("lot %d polled next, want 1", got)
	}
	p.release()
}

// A lot whose first snapshot failed is still unknown: its retry goes
// before the known lots' turns, as a first snapshot.
func TestFailedFirstSnapshotIsRetriedAsAFirstSnapshot(t *testing.T) {
	// Without cookies: a failed snapshot is not tried again anonymously.
	p := newPollLine(t, Config{}, nil, func(d *Deps) { d.Cookies = nil })
	for _, id := range []int64{1, 2} {
		t.Cleanup(p.h.Subscribe(id, newRecorder()))
		p.next()
		p.release()
		p.waitStatus(id, "known", func(s FeedStatus) bool { return s.Seq > 0 && !s.NextPoll.IsZero() })
	}
	p.ft.mu.Lock()
	p.ft.fail[3] = true
	p.ft.mu.Unlock()
	t.Cleanup(p.h.Subscribe(3, newRecorder()))
	p.next()
	p.clk.Advance(time.Second)
	p.release() // fails at +1s: the retry is due at +3s
	p.waitStatus(3, "failed", func(s FeedStatus) bool { return s.Degraded != "" && !s.NextPoll.IsZero() })

	p.clk.Advance(time.Second) // lots 1 and 2 poll: one holds the slot
	p.next()
	p.waiting(1)
	p.clk.Advance(time.Second) // lot 3 retries
	p.waiting(2)
	p.release()
	if id := p.next(); id != 3 {
		t.Fatalf("lot %d polled before the retry of lot 3's first snapshot", id)
	}
	p.release()
	p.next()
	p.release()
}
