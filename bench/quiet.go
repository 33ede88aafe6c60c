package main

import (
	"context"
	"time"
)

// waitQuiet waits, up to limit, for a second in which the rest of the
// machine uses under a third of a core: other people's builds and tests
// share these two cores, and a scenario measured under them measures them.
// It returns the busy share of the last second sampled (1 = one core), so
// the report can say how quiet the machine was when the scenario began.
func waitQuiet(ctx context.Context, limit time.Duration) float64 {
	deadline := time.Now().Add(limit)
	for {
		self0, busy0, t0 := selfCPU(), mustBusy(), time.Now()
		if err := sleepUntil(ctx, t0.Add(time.Second)); err != nil {
			return 0
		}
		busy := (mustBusy() - busy0 - (selfCPU() - self0)).Seconds() / time.Since(t0).Seconds()
		if busy < 0.33 || time.Now().After(deadline) {
			return max(busy, 0)
		}
	}
}
