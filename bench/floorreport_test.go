package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/bench/loadgen"
)

// The floor's rows go into their own table, beside the gateway's p99 of
// the same scenario; the gateway's table keeps only the gateway's rows.
func TestFloorRowsInTheirOwnTable(t *testing.T) {
	specs := withFloor(loadSpecs(true))
	outcome := func(key string, p99 float64) loadOutcome {
		i := slices.IndexFunc(specs, func(s loadSpec) bool { return s.key == key })
		return loadOutcome{spec: specs[i], res: loadgen.Result{Clients: 1000, Open: 1000, Latency: loadgen.Summary{P99: p99}}}
	}
	r := &report{quick: true, began: time.Now(), loads: []loadOutcome{outcome("c1k", 108), outcome("floor-c1k", 14.5)}}
	md := r.markdown()
	delivery, floorPart, ok := strings.Cut(md, "#### Machine floor")
	if !ok {
		t.Fatalf("no floor table:\n%s", md)
	}
	if strings.Count(delivery, "| 1,000 clients × 10/s | 1000 |") != 1 {
		t.Errorf("gateway table should hold the gateway's row only:\n%s", delivery)
	}
	if !strings.Contains(floorPart, "| 1,000 clients × 10/s | 1000 |") || !strings.Contains(floorPart, "| 14.5 |") ||
		!strings.Contains(floorPart, "| 108 |") {
		t.Errorf("floor table should hold the floor's p99 and the gateway's:\n%s", floorPart)
	}
}
