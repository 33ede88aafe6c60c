package main

import (
	"strings"
	"testing"
	"time"
)

// The shared-token rows stand beside their one-user-per-socket twins:
// setup against 15 s, every change delivered, no duplicates, p99 within
// 1.2× of the twin's; a run where clients failed to sign in meets none of
// them, however good the few clients' figures.
func TestSharedTableTargets(t *testing.T) {
	base := outcomeOf(t, "c10k-1p", 100, 0)
	good := outcomeOf(t, "shared-c10k-1p", 110, 0)
	good.res.StateSetupSecs = 8.4
	slow := outcomeOf(t, "shared-c10k", 130, 2)
	slow.res.StateSetupSecs, slow.res.Duplicates, slow.res.StatesMissing = 20, 5, 3
	failed := outcomeOf(t, "shared-c10k-1p", 9, 0)
	failed.ready.Failed = 9_980
	failed.res.StateSetupSecs = 0.04

	md := (&report{quick: true, began: time.Now(), loads: []loadOutcome{base, good, outcomeOf(t, "c10k", 100, 0), slow}}).markdown()
	_, part, ok := strings.Cut(md, "#### Shared token")
	if !ok {
		t.Fatalf("no shared-token table:\n%s", md)
	}
	one, ten := "| 10,000 clients × 2/s, 1 product, one user |", "| 10,000 clients × 2/s, one user |"
	for _, want := range []string{
		one + " 10000 | 1 | 1 | 0.00 | 8.40 | 0 | 100% | 0 | 0 | 110 |",
		"| 10,000 clients × 2/s, 1 product | 10000 | 10000 | 1 |",
		one + " set up in ≤ 15 s | 8.40 s (0 first states missing, 0 clients failed) | met |",
		one + " 100% delivered | 100% | met |",
		one + " no duplicates | 0 | met |",
		one + " p99 ≤ 1.2× one user per socket | 110 ms vs 100 ms: 1.10× | met |",
		ten + " set up in ≤ 15 s | 20.0 s (3 first states missing, 0 clients failed) | **missed**: not every client set up |",
		ten + " 100% delivered | 99.800% | **missed** by 2.00 drops",
		ten + " no duplicates | 5 | **missed**",
		ten + " p99 ≤ 1.2× one user per socket | 130 ms vs 100 ms: 1.30× | **missed** by 0.10× (1.1×) |",
	} {
		if !strings.Contains(part, want) {
			t.Errorf("missing %q in:\n%s", want, part)
		}
	}

	md = (&report{quick: true, began: time.Now(), loads: []loadOutcome{base, failed}}).markdown()
	for _, target := range []string{"set up in ≤ 15 s", "100% delivered", "p99 ≤ 1.2× one user per socket"} {
		if got := row(t, md, one+" "+target); !strings.Contains(got, "**missed**") {
			t.Errorf("9,980 clients refused, yet %s", got)
		}
	}
}
