package loadgen

import (
	"testing"
	"time"
)

func TestSummarizeNearestRank(t *testing.T) {
	d := make([]time.Duration, 0, 1000)
	for i := 1000; i >= 1; i-- { // reversed: summarize sorts
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(d)
	want := Summary{N: 1000, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000, Mean: 500.5}
	if got != want {
		t.Fatalf("summarize = %+v, want %+v", got, want)
	}
	if one := Summarize([]time.Duration{3 * time.Millisecond}); one.P50 != 3 || one.P99 != 3 || one.Max != 3 {
		t.Fatalf("one sample: %+v", one)
	}
	if empty := Summarize(nil); empty != (Summary{}) {
		t.Fatalf("no samples: %+v", empty)
	}
}

func TestSlowest(t *testing.T) {
	m := map[int64]time.Duration{1: time.Second, 2: 3 * time.Second}
	if d, ok := slowest(m, 2); !ok || d != 3*time.Second {
		t.Fatalf("slowest = %v, %v; want 3s", d, ok)
	}
	if _, ok := slowest(m, 3); ok {
		t.Fatal("a product without a change counted as recovered")
	}
}
