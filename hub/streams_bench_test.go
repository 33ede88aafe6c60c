package hub

import (
	"testing"
	"time"

	"github.com/nellis-edge/gateway/clock/clocktest"
)

// BenchmarkRebalance5000Lots is one rebalancer pass at auction-night
// scale: 5,000 lots want a stream, 1,000 hold one, closes spread over two
// hours. It runs four times a second.
func BenchmarkRebalance5000Lots(b *testing.B) {
	h := newNight(b)
	b.ReportAllocs()
	for b.Loop() {
		h.rebalance()
	}
}

// newNight is a hub with 5,000 lots wanting a stream and 1,000 holding
// one, closes spread over two hours, without the feeds' goroutines.
func newNight(tb testing.TB) *Hub {
	clk := clocktest.NewClock(t0)
	h := New(Config{UseSSE: true, MaxStreams: 1000}, Deps{Clock: clk, Watchers: func(id int64) int { return int(id % 7) }})
	tb.Cleanup(h.Close)
	for id := range int64(5000) {
		f := newFeed(h, id, h.cfg)
		f.slot = slotClaim{want: true, closeAt: t0.Add(time.Duration(id) * 1500 * time.Millisecond), granted: id < 1000, holding: id < 1000}
		h.feeds[id] = f
	}
	return h
}
