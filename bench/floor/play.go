package floor

import (
	"context"
	"sync"
	"time"

	"github.com/nellis-edge/gateway/nellissim"
)

// handOff is how many events a fan-out goroutine may fall behind the
// emitter before the emitter waits for it. It buffers shared frames, one
// per event, not messages per client; a goroutine that far behind has made
// every later event late already, and the lateness is measured.
const handOff = 1024

// Played is what one Play did.
type Played struct {
	Emitted int64 `json:"emitted"`
	// Lags holds each event's lateness when its frame was handed to the
	// fan-out goroutines, in schedule order: the emitter's own share of
	// the measured latency.
	Lags []time.Duration `json:"lags"`
	// Clients is how many sockets were monitoring a product at the start.
	Clients int `json:"clients"`
}

// event is one scheduled change, framed.
type event struct {
	productID int64
	frame     []byte
}

// Play emits sc's events on time until ctx ends or until, the first event
// due at or after it not played, as nellissim.Simulator.Play does: an
// emitter that falls behind sends late, never skips. spin is how long
// before each due time the emitter stops sleeping and yields in a loop (a
// Go timer fires up to a millisecond late). Each event is framed once and
// handed to one goroutine per shard, which writes it to that shard's
// sockets monitoring the product. Play returns once every write is done.
func (s *Server) Play(ctx context.Context, sc nellissim.Schedule, until time.Time, spin time.Duration) (Played, error) {
	var res Played
	if err := sc.Validate(); err != nil {
		return res, err
	}
	for _, sh := range s.shards {
		seen := map[*client]bool{}
		for _, id := range sc.Products {
			for _, c := range sh.monitoring(id) {
				seen[c] = true
			}
		}
		res.Clients += len(seen)
	}
	var workers sync.WaitGroup
	feeds := make([]chan event, len(s.shards))
	for i, sh := range s.shards {
		feeds[i] = make(chan event, handOff)
		workers.Add(1)
		go func() {
			defer workers.Done()
			for ev := range feeds[i] {
				if ctx.Err() != nil {
					continue // drain: the run is over
				}
				for _, c := range sh.monitoring(ev.productID) {
					_ = c.write(ev.frame) // a failed socket is closed and skipped
				}
			}
		}()
	}
	defer func() {
		for _, f := range feeds {
			close(f)
		}
		workers.Wait()
	}()

	err := sc.Pace(ctx, until, spin, func(k int64, due time.Time) error {
		id, price := sc.Event(k)
		ev := event{productID: id, frame: stateFrame(id, price)}
		for _, f := range feeds {
			select {
			case f <- ev:
			case <-ctx.Done():
				return nil // the run is over; Pace sees it before the next event
			}
		}
		res.Emitted++
		res.Lags = append(res.Lags, time.Since(due))
		return nil
	})
	return res, err
}
