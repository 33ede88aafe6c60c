package hub

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/sseupstream"
)

// blockingSub holds the feed's goroutine in Deliver until released.
type blockingSub struct {
	in      chan struct{}
	release chan struct{}
}

func (b *blockingSub) Deliver(*Change) {
	b.in <- struct{}{}
	<-b.release
}

// A healthy stream's pings are counted, not handed to the feed: a feed
// busy fanning out a change does not hold up its stream's reader on them,
// and a night's 1,000 pings a second wake no feed.
func TestPingsOfAHealthyStreamDoNotWaitForTheFeed(t *testing.T) {
	var pings atomic.Int64
	e := newEnv(t, sseConfig(), func(d *Deps) {
		d.Hooks.StreamEvent = func(_ int64, kind sseupstream.Kind) {
			if kind == sseupstream.Ping {
				pings.Add(1)
			}
		}
	})
	_, s, _ := e.healthyFeed(1)
	b := &blockingSub{in: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(e.h.Subscribe(1, b))
	e.bid(s, 150, 5)
	<-b.in // the feed's goroutine is delivering, and stays there
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			s.obs.StreamEvent(sseupstream.Event{Kind: sseupstream.Ping, ProductID: 1, ReceivedAt: e.clk.Now()})
		}
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		close(b.release)
		t.Fatal("pings waited for the feed's goroutine")
	}
	close(b.release)
	if n := pings.Load(); n < 100 {
		t.Fatalf("%d pings counted, want every one of the 100 (and the first)", n)
	}
	e.bid(s, 160, 6) // the feed still follows its stream
	<-b.in
	e.waitStatus(1, "at 160", func(st FeedStatus) bool { return st.Seq >= 3 })
}
