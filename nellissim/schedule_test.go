package nellissim

import (
	"context"
	"testing"
	"time"
)

func TestScheduleLookupInvertsEvent(t *testing.T) {
	sc := Schedule{Start: time.Unix(1000, 0), Rate: 7, Products: []int64{11, 22, 33}, BasePrice: 5000}
	idx := sc.Index()
	for k := int64(0); k < 100; k++ {
		id, price := sc.Event(k)
		got, ok := sc.Lookup(idx, id, float64(price))
		if !ok || got != k {
			t.Fatalf("event %d (product %d, $%d): Lookup = %d, %v", k, id, price, got, ok)
		}
	}
	for _, tc := range []struct {
		id    int64
		price float64
	}{{11, 4999}, {44, 5000}, {11, 5000.5}} {
		if k, ok := sc.Lookup(idx, tc.id, tc.price); ok {
			t.Errorf("Lookup(%d, %v) = %d, want not found", tc.id, tc.price, k)
		}
	}
}

func TestScheduleCountMatchesAt(t *testing.T) {
	sc := Schedule{Start: time.Unix(1000, 0), Rate: 3, Products: []int64{1}, BasePrice: 1}
	from, until := sc.Start.Add(time.Second), sc.Start.Add(3*time.Second)
	var want int64
	for k := int64(0); k < 20; k++ {
		if at := sc.At(k); !at.Before(from) && at.Before(until) {
			want++
		}
	}
	if got := sc.Count(from, until); got != want || want != 6 {
		t.Fatalf("Count = %d, want %d (and 6)", got, want)
	}
	if got := sc.Count(sc.Start.Add(-time.Hour), sc.Start); got != 0 {
		t.Fatalf("Count before start = %d, want 0", got)
	}
}

func TestScheduleValidate(t *testing.T) {
	ok := Schedule{Start: time.Unix(1, 0), Rate: 1, Products: []int64{1}, BasePrice: 1}
	for name, mutate := range map[string]func(*Schedule){
		"no start":      func(s *Schedule) { s.Start = time.Time{} },
		"zero rate":     func(s *Schedule) { s.Rate = 0 },
		"no products":   func(s *Schedule) { s.Products = nil },
		"twice":         func(s *Schedule) { s.Products = []int64{1, 1} },
		"no base":       func(s *Schedule) { s.BasePrice = 0 },
		"nan rate":      func(s *Schedule) { s.Rate = nan() },
		"negative rate": func(s *Schedule) { s.Rate = -1 },
	} {
		sc := ok
		mutate(&sc)
		if sc.Validate() == nil {
			t.Errorf("%s: Validate accepted %+v", name, sc)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid schedule refused: %v", err)
	}
}

func nan() float64 { zero := 0.0; return zero / zero }

// Play sets each product's price to the schedule's last price for it,
// every bid accepted.
func TestPlaySetsScheduledPrices(t *testing.T) {
	sim := New(Config{Seed: 3, Auctions: 4, AuctionLength: time.Hour})
	defer sim.Close()
	auctions := sim.Auctions()
	ids := []int64{auctions[0].ID, auctions[1].ID}
	sc := Schedule{Start: time.Now(), Rate: 200, Products: ids, BasePrice: 100_000}
	until := sc.Start.Add(100 * time.Millisecond) // 20 events, 10 per product
	res, err := sim.Play(context.Background(), sc, PlayOptions{Until: until})
	if err != nil {
		t.Fatal(err)
	}
	if res.Emitted != 20 || res.Failed != 0 {
		t.Fatalf("Play = %+v, want 20 emitted, none failed", res)
	}
	for _, a := range sim.Auctions() {
		switch a.ID {
		case ids[0], ids[1]:
			if a.CurrentBid != 100_009 {
				t.Errorf("product %d price %d, want 100009", a.ID, a.CurrentBid)
			}
		}
	}
}

func TestPlayStopsWithContext(t *testing.T) {
	sim := New(Config{Seed: 3, Auctions: 1, AuctionLength: time.Hour})
	defer sim.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sc := Schedule{Start: time.Now().Add(time.Hour), Rate: 1, Products: []int64{sim.Auctions()[0].ID}, BasePrice: 100_000}
	res, err := sim.Play(ctx, sc, PlayOptions{Until: sc.Start.Add(time.Hour), Spin: time.Millisecond})
	if err != nil || res.Emitted != 0 {
		t.Fatalf("Play after cancel = %+v, %v; want nothing emitted", res, err)
	}
}

// Spinning emits on time: no event leaves before it is due.
func TestPlaySpinEmitsOnTime(t *testing.T) {
	sim := New(Config{Seed: 3, Auctions: 1, AuctionLength: time.Hour})
	defer sim.Close()
	sc := Schedule{Start: time.Now().Add(5 * time.Millisecond), Rate: 100, Products: []int64{sim.Auctions()[0].ID}, BasePrice: 100_000}
	res, err := sim.Play(context.Background(), sc, PlayOptions{Until: sc.Start.Add(200 * time.Millisecond), Spin: 2 * time.Millisecond})
	if err != nil || res.Emitted != 20 {
		t.Fatalf("Play = %+v, %v; want 20 emitted", res, err)
	}
	for k, lag := range res.Lags {
		if lag < 0 {
			t.Fatalf("event %d emitted %s early", k, -lag)
		}
	}
}

// Before runs between events: a fault injected there precedes exactly the
// events from k on.
func TestPlayBeforeRunsBetweenEvents(t *testing.T) {
	sim := New(Config{Seed: 3, Auctions: 1, AuctionLength: time.Hour})
	defer sim.Close()
	id := sim.Auctions()[0].ID
	sc := Schedule{Start: time.Now(), Rate: 500, Products: []int64{id}, BasePrice: 100_000}
	var priceAt5 int
	res, err := sim.Play(context.Background(), sc, PlayOptions{
		Until: sc.Start.Add(20 * time.Millisecond),
		Before: func(k int64) {
			if k == 5 {
				priceAt5 = sim.Auctions()[0].CurrentBid
			}
		},
	})
	if err != nil || res.Emitted != 10 {
		t.Fatalf("Play = %+v, %v; want 10 emitted", res, err)
	}
	if priceAt5 != 100_004 {
		t.Fatalf("price seen before event 5 = %d, want event 4's 100004", priceAt5)
	}
}
