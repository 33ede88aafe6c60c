// Snapshot failures and how the status reports them.

package hub

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/clock/clocktest"
)

func TestSnapshotErrorsDegradeWithoutZeros(t *testing.T) {
	withLogs, logs := logsAtInfo()
	e := newEnv(t, Config{}, withLogs)
	e.ft.fail(errors.New("nellis: html snapshot: no data"))
	r := newRecorder()
	defer e.h.Subscribe(7, r)()

	for i := range 3 {
		if i > 0 {
			e.clk.Advance(2 * time.Second)
		}
		if p := e.waitPoll(SourcePoll); p.err == nil {
			t.Fatal("fetch succeeded")
		}
	}
	e.noChange(r)
	if _, ok := e.h.State(7); ok {
		t.Fatal("a state was published without any snapshot")
	}
	st := e.waitStatus(7, "degraded", func(s FeedStatus) bool { return s.Degraded != "" })
	if !strings.Contains(st.LastError, "no data") {
		t.Errorf("last error %q", st.LastError)
	}
	if n := logs.FilterMessage("snapshot failing; feed degraded").Len(); n != 1 {
		t.Errorf("failure logged %d times over 3 failures, want once", n)
	}
	for _, entry := range logs.All() {
		for _, f := range entry.Context {
			if strings.Contains(f.String, "secret") {
				t.Errorf("cookie in log %q: %v", entry.Message, f)
			}
		}
	}

	e.ft.fail(nil)
	e.clk.Advance(2 * time.Second)
	e.waitPoll(SourcePoll)
	if c := e.waitChange(r); c.Product.CurrentBid != 100 {
		t.Fatalf("recovered state: %v", c.Product.CurrentBid)
	}
	e.waitStatus(7, "healthy", func(s FeedStatus) bool { return s.Degraded == "" })
	if n := logs.FilterMessage("snapshot recovered").Len(); n != 1 {
		t.Errorf("recovery logged %d times, want once", n)
	}
}

func TestSnapshotOfAnotherProductIsAnError(t *testing.T) {
	e := newEnv(t, Config{})
	e.ft.set(7, lot(8, 999, 9))
	r := newRecorder()
	defer e.h.Subscribe(7, r)()
	if p := e.waitPoll(SourcePoll); p.err == nil || !strings.Contains(p.err.Error(), "product 8") {
		t.Fatalf("fetch error %v, want one naming the wrong product", p.err)
	}
	e.noChange(r)
}

func TestMissingFetcherDegradesInsteadOfPanicking(t *testing.T) {
	clk := clocktest.NewClock(t0)
	h := New(Config{}, Deps{Clock: clk})
	defer h.Close()
	defer h.Subscribe(7, newRecorder())()
	h.Subscribe(7, nil)() // ignored
	deadline := time.Now().Add(waitTimeout)
	for {
		if st := h.Status(); len(st) == 1 && strings.Contains(st[0].LastError, "no snapshot fetcher") {
			if st[0].Subscribers != 1 {
				t.Fatalf("subscribers %d, want 1 (nil ignored)", st[0].Subscribers)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", h.Status())
		}
		time.Sleep(time.Millisecond)
	}
}
