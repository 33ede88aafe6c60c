package main

import (
	"slices"
	"testing"
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
