package main

import (
	"slices"
	"time"
)

// productCount is P in every load scenario: well under the per-user
// max_auctions, and enough lots for the gateway to run ten feeds.
const productCount = 10

// loadSpecs are the scenarios. Each client monitors every product,
// so rate is also each client's messages per second. quick shortens the
// windows for a smoke run; the client counts and rates stay those of the
// targets.
func loadSpecs(quick bool) []loadSpec {
	window := func(full, short time.Duration) time.Duration {
		if quick {
			return short
		}
		return full
	}
	const warm, drain = 2 * time.Second, 2 * time.Second
	return []loadSpec{
		{key: "c10", name: "10 clients × 10/s", clients: 10, products: productCount, rate: 10,
			warmup: warm, window: window(20*time.Second, 5*time.Second), drain: drain},
		{key: "c1k", name: "1,000 clients × 10/s", clients: 1_000, products: productCount, rate: 10,
			warmup: warm, window: window(20*time.Second, 5*time.Second), drain: drain},
		{key: "c10k", name: "10,000 clients × 2/s", clients: 10_000, products: productCount, rate: 2,
			warmup: warm, window: window(20*time.Second, 5*time.Second), drain: drain},
		{key: "100k", name: "1,000 clients × 100/s", clients: 1_000, products: productCount, rate: 100,
			warmup: warm, window: window(60*time.Second, 5*time.Second), drain: drain},
		{key: "drop", name: "upstream drop", clients: 10, products: productCount, rate: 100,
			warmup: warm, window: 8 * time.Second, drain: drain, markAfter: 4 * time.Second,
			fault: func(s *simulator) error { return s.DropStreams(0) }},
		{key: "fallback", name: "fallback to polling", clients: 10, products: productCount, rate: 100,
			warmup: warm, window: window(25*time.Second, 15*time.Second), drain: drain, markAfter: 4 * time.Second,
			// Every stream request fails from now on and the open ones
			// end: only polling can deliver.
			fault: func(s *simulator) error {
				if err := s.FailStreams(0, 1_000_000, 500); err != nil {
					return err
				}
				return s.DropStreams(0)
			}},
	}
}

// floorKeys are the delivery scenarios also measured against the machine
// floor (bench/floor), keyed "floor-<key>".
var floorKeys = []string{"c10", "c1k", "c10k", "100k"}

// withFloor puts each floor scenario right after its gateway scenario, so
// the two meet the machine in about the same state.
func withFloor(specs []loadSpec) []loadSpec {
	var out []loadSpec
	for _, s := range specs {
		out = append(out, s)
		if slices.Contains(floorKeys, s.key) {
			f := s
			f.key, f.floor = "floor-"+s.key, true
			out = append(out, f)
		}
	}
	return out
}

// label names the scenario in the driver's log.
func (s loadSpec) label() string {
	if s.floor {
		return "machine floor, " + s.name
	}
	return s.name
}
