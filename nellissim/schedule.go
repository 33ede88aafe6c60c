package nellissim

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Schedule is a deterministic stream of bids for benchmarks: event k
// (k = 0, 1, 2, …) is due at Start + k/Rate on product Products[k mod P] at
// price BasePrice + k div P. Every event raises its product's price by one
// dollar, so a price seen by a client names the event that caused it, and
// the client computes the event's scheduled time with Lookup from the same
// five numbers. Latency measured from that scheduled time, not from when
// the simulator got round to the event, cannot hide a stall anywhere on the
// path (coordinated omission): a late emit shows up as latency.
//
// The price carries the schedule because the gateway forwards only the
// fields it knows; an extra timestamp field would be dropped on the way.
type Schedule struct {
	// Start is when event 0 is due.
	Start time.Time `json:"start"`
	// Rate is events per second over all products.
	Rate float64 `json:"rate"`
	// Products are the lots bid on, in turn.
	Products []int64 `json:"products"`
	// BasePrice is the price of each product's first event; it must be
	// above every price the lots had before, or the first bids are refused.
	BasePrice int `json:"basePrice"`
}

// Validate reports a schedule that cannot be played.
func (sc Schedule) Validate() error {
	switch {
	case sc.Start.IsZero():
		return errors.New("schedule: start time is not set")
	case !(sc.Rate > 0):
		return fmt.Errorf("schedule: rate must be positive, got %v", sc.Rate)
	case len(sc.Products) == 0:
		return errors.New("schedule: no products")
	case sc.BasePrice <= 0:
		return fmt.Errorf("schedule: base price must be positive, got %d", sc.BasePrice)
	}
	seen := make(map[int64]bool, len(sc.Products))
	for _, id := range sc.Products {
		if seen[id] {
			return fmt.Errorf("schedule: product %d listed twice", id)
		}
		seen[id] = true
	}
	return nil
}

// At is when event k is due.
func (sc Schedule) At(k int64) time.Time {
	return sc.Start.Add(time.Duration(float64(k) * float64(time.Second) / sc.Rate))
}

// Event returns event k: its product and price.
func (sc Schedule) Event(k int64) (productID int64, price int) {
	p := int64(len(sc.Products))
	return sc.Products[k%p], sc.BasePrice + int(k/p)
}

// Index returns the position of each product in Products, for Lookup.
func (sc Schedule) Index() map[int64]int {
	idx := make(map[int64]int, len(sc.Products))
	for i, id := range sc.Products {
		idx[id] = i
	}
	return idx
}

// Lookup maps a product's price back to the event that set it, with index
// from Index. ok is false for a price the schedule never emits (such as the
// lot's price before the schedule started).
func (sc Schedule) Lookup(index map[int64]int, productID int64, price float64) (k int64, ok bool) {
	i, known := index[productID]
	if !known || price != float64(int64(price)) || int64(price) < int64(sc.BasePrice) {
		return 0, false
	}
	round := int64(price) - int64(sc.BasePrice)
	return round*int64(len(sc.Products)) + int64(i), true
}

// Count is how many events are due in [from, until).
func (sc Schedule) Count(from, until time.Time) int64 {
	return sc.firstAtOrAfter(until) - sc.firstAtOrAfter(from)
}

// firstAtOrAfter is the first event due at or after t.
func (sc Schedule) firstAtOrAfter(t time.Time) int64 {
	if !t.After(sc.Start) {
		return 0
	}
	k := int64(t.Sub(sc.Start).Seconds() * sc.Rate)
	for k > 0 && !sc.At(k-1).Before(t) {
		k--
	}
	for sc.At(k).Before(t) {
		k++
	}
	return k
}

// PlayResult counts what Play did.
type PlayResult struct {
	Emitted int64 // bids accepted and sent to the streams
	Failed  int64 // bids the simulator refused (for example, a closed lot)
	// MaxLag is the longest an event was emitted after it was due: the
	// simulator's own share of the measured latency.
	MaxLag time.Duration
	// Lags holds every emitted event's lateness, in schedule order.
	Lags []time.Duration
	// FirstErr is the first refusal, for the report.
	FirstErr error
}

// PlayOptions tune Play.
type PlayOptions struct {
	// Until ends the play before the first event due at or after it.
	Until time.Time
	// Spin is how long before each due time the emitter stops sleeping and
	// yields in a loop instead. A Go timer fires up to about a millisecond
	// late in an otherwise idle process (the runtime's poller sleeps in
	// whole milliseconds), which would count as the gateway's latency;
	// spinning is precise at the price of up to Spin of CPU per event.
	// Default: 0, no spinning.
	Spin time.Duration
	// Before, when set, runs just before event k is emitted, in Play's
	// goroutine: a fault injected there falls exactly between two events,
	// so the first event after it is known.
	Before func(k int64)
}

// Play emits the schedule's events on time until ctx ends or opts.Until,
// and returns what it did. An event is never skipped: when the emitter
// falls behind, due events go out at once, late, and the lateness counts
// against latency. Bids alternate between two bidders each round, so every
// bid takes the lead and sets the price to its amount. It runs in the
// caller's goroutine.
func (s *Simulator) Play(ctx context.Context, sc Schedule, opts PlayOptions) (PlayResult, error) {
	var res PlayResult
	if err := sc.Validate(); err != nil {
		return res, err
	}
	p := int64(len(sc.Products))
	err := sc.Pace(ctx, opts.Until, opts.Spin, func(k int64, due time.Time) error {
		if opts.Before != nil {
			opts.Before(k)
		}
		id, price := sc.Event(k)
		bidder := "bench-a"
		if (k/p)%2 == 1 {
			bidder = "bench-b"
		}
		err := s.EmitBid(id, price, bidder)
		lag := time.Since(due)
		res.MaxLag = max(res.MaxLag, lag)
		if err != nil {
			if errors.Is(err, errSimulatorDown) {
				return err
			}
			res.Failed++
			if res.FirstErr == nil {
				res.FirstErr = err
			}
			return nil
		}
		res.Emitted++
		res.Lags = append(res.Lags, lag)
		return nil
	})
	return res, err
}

// Pace calls emit for each of the schedule's events at its due time, in
// the caller's goroutine, until ctx ends, emit fails, or the first event
// due at or after until. An event is never skipped: when emit falls
// behind, due events are emitted at once, late. spin is how long before
// each due time Pace stops sleeping and yields in a loop instead (see
// PlayOptions.Spin).
func (sc Schedule) Pace(ctx context.Context, until time.Time, spin time.Duration, emit func(k int64, due time.Time) error) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for k := int64(0); ; k++ {
		due := sc.At(k)
		if !due.Before(until) {
			return nil
		}
		if wait := time.Until(due) - spin; wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		for time.Now().Before(due) {
			runtime.Gosched()
		}
		if err := emit(k, due); err != nil {
			return err
		}
	}
}
