package hub

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/nellis"
)

// steppedFetcher reports each snapshot request and answers it only when
// the test releases one.
type steppedFetcher struct {
	calls   chan int64
	release chan struct{}
}

func (f *steppedFetcher) Snapshot(ctx context.Context, id int64, _ string) (nellis.Snapshot, error) {
	f.calls <- id
	select {
	case <-f.release:
	case <-ctx.Done():
		return nellis.Snapshot{}, ctx.Err()
	}
	return nellis.Snapshot{Patch: lot(id, 10, 1), Format: nellis.FormatJSON}, nil
}

// The first snapshot of a product no user monitors waits behind every
// monitored product's, whenever it was asked for, and Prioritize moves it
// up once a user monitors it.
func TestUnmonitoredProductsArePolledInTheBackground(t *testing.T) {
	var mu sync.Mutex
	monitored := map[int64]bool{1: true, 3: true}
	ft := &steppedFetcher{calls: make(chan int64, 10), release: make(chan struct{})}
	e := newEnv(t, Config{Limiter: fallback.LimiterConfig{Rate: 1e6, Burst: 1000, MaxInFlight: 1}}, func(d *Deps) {
		d.Snapshots = ft
		d.Monitored = func(id int64) bool {
			mu.Lock()
			defer mu.Unlock()
			return monitored[id]
		}
	})
	nextCall := func(want int64) {
		t.Helper()
		select {
		case id := <-ft.calls:
			if id != want {
				t.Fatalf("snapshot of %d requested, want %d", id, want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("no snapshot requested, want %d", want)
		}
	}
	waiting := func(n int) {
		t.Helper()
		e.eventually("snapshots waiting for the limiter", func() bool { return e.h.limiter.Stats().Waiting == n })
	}
	subscribe := func(id int64) { t.Cleanup(e.h.Subscribe(id, newRecorder())) }

	subscribe(1)
	nextCall(1) // holds the one slot
	subscribe(2)
	waiting(1)
	subscribe(3)
	waiting(2)
	ft.release <- struct{}{}
	nextCall(3) // monitored, asked for after 2
	subscribe(4)
	waiting(2)

	mu.Lock()
	monitored[4] = true
	mu.Unlock()
	e.h.Prioritize(4)
	e.eventually("product 4's snapshot promoted", func() bool { return e.h.limiter.Stats().Background == 1 })
	ft.release <- struct{}{}
	nextCall(4)
	ft.release <- struct{}{}
	nextCall(2)
	ft.release <- struct{}{}
}
