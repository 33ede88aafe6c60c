package main

import (
	"slices"
	"testing"
	"time"
)

// Each delivery scenario with a floor twin is followed by it, the same
// load under its own key; the fault scenarios have none.
func TestWithFloor(t *testing.T) {
	var keys []string
	for _, s := range withFloor(loadSpecs(true)) {
		keys = append(keys, s.key)
		if s.floor != (len(s.key) > 6 && s.key[:6] == "floor-") {
			t.Errorf("%s: floor = %v", s.key, s.floor)
		}
	}
	want := []string{"c10", "floor-c10", "c1k", "floor-c1k", "c10k", "floor-c10k", "100k", "floor-100k", "drop", "fallback"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
}

// The night's rows close the lots one at a time, every lot at its own
// time, at a pace that never has more lots in their last 60 s than the
// 1,000 streams allowed; the full row closes a tenth of them inside its
// window, the rest after it.
func TestLotsCloseStaggered(t *testing.T) {
	for _, quick := range []bool{false, true} {
		spec := lotsSpec(t, quick, "lots")
		ids := make([]int64, spec.products)
		for i := range ids {
			ids[i] = int64(58_000_000 + 3*i)
		}
		opens := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
		closes := closeTimes(ids, opens, *spec.lots)
		seen := map[time.Time]bool{}
		inWindow := 0
		for _, at := range closes {
			if at.Before(opens) {
				t.Fatalf("a lot closes at %s, before the window opens at %s", at, opens)
			}
			if seen[at] {
				t.Fatalf("two lots close at %s", at)
			}
			seen[at] = true
			if at.Before(opens.Add(spec.window)) {
				inWindow++
			}
		}
		lp := spec.lots
		want := int((spec.window - lp.firstClose + lp.gap - 1) / lp.gap)
		if !quick && want != spec.products/10 {
			t.Errorf("the full row closes %d lots in its window, want a tenth", want)
		}
		if len(closes) != spec.products || inWindow != want {
			t.Errorf("quick %v: %d lots, %d closing in the window; want %d and %d", quick, len(closes), inWindow, spec.products, want)
		}
		if n := int(lastWindow / lp.gap); n > 1000 {
			t.Errorf("quick %v: %d lots in their last 60 s at once, more than the 1,000 streams", quick, n)
		}
		if d := closes[ids[1]].Sub(closes[ids[0]]); d.Abs() < spec.window/2 {
			t.Errorf("quick %v: neighbouring lots close %s apart", quick, d)
		}
	}
}

// lotsSpec is the lots row of that key.
func lotsSpec(t *testing.T, quick bool, key string) loadSpec {
	t.Helper()
	for _, s := range lotsSpecs(quick) {
		if s.key == key {
			return s
		}
	}
	t.Fatalf("no lots row %q", key)
	return loadSpec{}
}

// The one-lot row, which the nights' last 60 s are judged against, runs the
// nights' gateway with 20 clients on one lot that closes as the window
// ends: every change it measures is in the lot's last 60 s.
func TestLotsControlIsOneClosingLot(t *testing.T) {
	night := lotsSpec(t, false, "lots")
	for _, quick := range []bool{false, true} {
		spec := lotsSpec(t, quick, "lots-one")
		lp := spec.lots
		if !lp.control || spec.products != 1 || spec.clients != night.clients*night.lots.watch/night.products || spec.rate != 10 {
			t.Fatalf("quick %v: %+v, want one lot, 20 clients, 10 changes a second", quick, spec)
		}
		if !slices.Equal(lp.nellis, night.lots.nellis) {
			t.Errorf("quick %v: gateway settings %v, want the night's %v", quick, lp.nellis, night.lots.nellis)
		}
		opens := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
		closeAt := closeTimes([]int64{1}, opens, *lp)[1]
		if !closeAt.Equal(opens.Add(spec.window)) || spec.window > lastWindow {
			t.Errorf("quick %v: the lot closes %s after the window opens, window %s; want as it ends, within its last 60 s", quick, closeAt.Sub(opens), spec.window)
		}
	}
}
