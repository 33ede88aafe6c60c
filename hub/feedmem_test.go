package hub

import (
	"runtime"
	"testing"
)

// A lot only polled (thousands on an auction night, beside the
// max_streams streamed ones) holds no room for stream events: at 5,000
// lots that room was a fifth of the gateway's live heap, all of it for
// the garbage collector to scan.
func TestAPolledLotHoldsNoStreamBuffer(t *testing.T) {
	h := New(Config{}, Deps{})
	t.Cleanup(h.Close)
	const n = 1000
	feeds := make([]*feed, 0, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for id := range int64(n) {
		feeds = append(feeds, newFeed(h, id, h.cfg))
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	if per > 4096 {
		t.Fatalf("a feed not yet streaming allocates %d bytes, want at most 4 KiB", per)
	}
	runtime.KeepAlive(feeds)
}
