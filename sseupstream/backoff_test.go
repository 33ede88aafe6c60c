package sseupstream

import (
	"math"
	"testing"
	"time"
)

func TestBackoffCeiling(t *testing.T) {
	tests := []struct {
		failures  int
		base, max time.Duration
		want      time.Duration
	}{
		{0, time.Second, 15 * time.Second, time.Second},
		{1, time.Second, 15 * time.Second, 2 * time.Second},
		{3, time.Second, 15 * time.Second, 8 * time.Second},
		{4, time.Second, 15 * time.Second, 15 * time.Second},
		{1000, time.Second, 15 * time.Second, 15 * time.Second},
		{1000, time.Second, math.MaxInt64, math.MaxInt64},
		{62, 3, math.MaxInt64, math.MaxInt64},
		{2, 0, time.Second, 0},
	}
	for _, tt := range tests {
		if got := backoffCeiling(tt.failures, tt.base, tt.max); got != tt.want {
			t.Errorf("ceiling(%d, %s, %s) = %s, want %s", tt.failures, tt.base, tt.max, got, tt.want)
		}
	}
}

func TestBackoffDelayIsFullJitter(t *testing.T) {
	var asked int64
	top := func(n int64) int64 { asked = n; return n - 1 }
	if got := backoffDelay(2, time.Second, 15*time.Second, top); got != 4*time.Second-1 || asked != int64(4*time.Second) {
		t.Errorf("delay %s drawn from [0, %s), want the top of [0, 4s)", got, time.Duration(asked))
	}
	bottom := func(int64) int64 { return 0 }
	if got := backoffDelay(9, time.Second, 15*time.Second, bottom); got != 0 {
		t.Errorf("delay %s, want 0 at the bottom of the window", got)
	}
}
