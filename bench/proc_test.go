package main

import (
	"os"
	"testing"
)

// The readers parse this very process: it has a resident set and has used
// some CPU by the time the test runs.
func TestProcReadersOnSelf(t *testing.T) {
	pid := os.Getpid()
	rss, peak, err := procMem(pid)
	if err != nil || rss <= 0 || peak < rss {
		t.Fatalf("procMem = %d, %d, %v; want 0 < rss ≤ peak", rss, peak, err)
	}
	x := 0
	for i := range 50_000_000 { // burn a few ticks of CPU
		x ^= i
	}
	_ = x
	cpu, err := procCPU(pid)
	if err != nil || cpu <= 0 {
		t.Fatalf("procCPU = %v, %v", cpu, err)
	}
	if _, err := procCPU(-1); err == nil {
		t.Fatal("procCPU of no process succeeded")
	}
}
