package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/bench/loadgen"
)

// The cluster rows come right after c1k, whose load they carry, and
// nowhere else.
func TestWithClusterAfterC1k(t *testing.T) {
	var keys []string
	for _, s := range withCluster(withFloor(loadSpecs(true)), true) {
		keys = append(keys, s.key)
	}
	want := []string{"c10", "floor-c10", "c1k", "cluster3", "cluster-failover", "floor-c1k", "c10k", "floor-c10k", "100k", "floor-100k", "drop", "fallback"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
}

// clusterOutcomeOf is a cluster scenario's outcome with c1k's load.
func clusterOutcomeOf(t *testing.T, key string, p99, cpuPer1k float64) loadOutcome {
	t.Helper()
	specs := clusterSpecs(true)
	i := slices.IndexFunc(specs, func(s loadSpec) bool { return s.key == key })
	if i < 0 {
		t.Fatalf("no scenario %s", key)
	}
	o := outcomeOf(t, "c1k", p99, 0)
	o.spec = specs[i]
	o.gwCPU = time.Duration(cpuPer1k * float64(time.Millisecond)) // 1,000 delivered
	o.cluster = &clusterOutcome{streams: streamSamples{n: 5, most: 1}, owned: map[string]int{"n1": 4, "n2": 3, "n3": 3}}
	return o
}

// cluster3 meets issue 15's targets against c1k of the same run: p99 within
// 2×, CPU per delivery within 1.5×, no drops or duplicates, one stream
// per product at every sample; a second stream at one sample misses.
func TestClusterTableAgainstC1k(t *testing.T) {
	single := outcomeOf(t, "c1k", 10, 0)
	single.gwCPU = 20 * time.Millisecond
	good := clusterOutcomeOf(t, "cluster3", 19, 29)
	good.res.Groups = map[string]loadgen.Group{
		"cross": {Delivered: 600, Latency: loadgen.Summary{P99: 19.5}},
		"local": {Delivered: 400, Latency: loadgen.Summary{P99: 12}},
	}
	md := (&report{quick: true, began: time.Now(), loads: []loadOutcome{single, good}}).markdown()
	name := "| 1,000 clients × 10/s, 3 nodes |"
	for _, want := range []string{
		name + " cross-node p99 ≤ 2× c1k's p99 (20.0 ms) | cross-node p99 19.5 ms over 600 deliveries (local 12.0 ms over 400; all 19.0 ms) | met |",
		name + " CPU per delivery ≤ 1.5× c1k's (30.0 ms / 1k) | 29.0 ms / 1k | met |",
		name + " 0 drops, 0 duplicates | 0 drops of 1000, 0 duplicates | met |",
		name + " exactly one upstream stream per product at every 1 s sample | 5 samples: at most 1 on a product, 0 with one on two, 0 with one on none | met |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in:\n%s", want, md)
		}
	}

	// Without the split (no owner known), the bound holds every delivery.
	bad := clusterOutcomeOf(t, "cluster3", 25, 31)
	bad.cluster.streams = streamSamples{n: 5, most: 2, doubled: 1}
	md = (&report{quick: true, began: time.Now(), loads: []loadOutcome{single, bad}}).markdown()
	if got := row(t, md, name+" cross-node p99"); !strings.Contains(got, "p99 25.0 ms over every delivery (not split)") {
		t.Errorf("%s", got)
	}
	for _, target := range []string{"cross-node p99 ≤ 2×", "CPU per delivery", "exactly one upstream stream"} {
		if got := row(t, md, name+" "+target); !strings.Contains(got, "**missed**") {
			t.Errorf("%s", got)
		}
	}
}

// cluster-failover passes when the only clients missing a post-kill
// change are the killed node's (they can have none) and the survivors'
// worst is within 5 s; one survivor more missing fails it.
func TestClusterTableFailover(t *testing.T) {
	o := clusterOutcomeOf(t, "cluster-failover", 400, 30)
	o.cluster.killed, o.cluster.killedOwned, o.cluster.killedClients, o.cluster.afterKill = "n1", 4, 334, 110
	o.res.MarkMissing = 334
	o.res.AfterMark.N, o.res.AfterMark.Max, o.res.AfterMark.P50 = 666, 3850, 3600
	o.res.Drops = 334*110 + 500
	name := "| 1,000 clients × 10/s, 3 nodes, busiest owner killed"
	md := (&report{quick: true, began: time.Now(), loads: []loadOutcome{o}}).markdown()
	for _, want := range []string{
		name + ": n1 killed (owned 4 of 10 products) | every surviving client (666) gets a post-kill change of every product within 5 s | 666 of them, worst 3.85 s (median 3.60 s); 0 survivors missed a product | met |",
		"334 clients × 110 events after the kill = 36740, and 500 on the survivors",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in:\n%s", want, md)
		}
	}
	o.res.MarkMissing = 335
	md = (&report{quick: true, began: time.Now(), loads: []loadOutcome{o}}).markdown()
	if got := row(t, md, name+": n1 killed"); !strings.Contains(got, "1 survivors missed a product") || !strings.Contains(got, "**missed**") {
		t.Errorf("a survivor missed a product, yet %s", got)
	}
}

// Client i dials node i mod n, so the killed node's clients are counted
// by that rule.
func TestClusterOutcomeCountsKilledClients(t *testing.T) {
	c := &clusterServer{nodes: make([]*gateway, 3), names: []string{"n1", "n2", "n3"}, killed: 1, killedOwned: 5}
	// outcome asks the live nodes' admin endpoints; none answers here.
	c.nodes[0], c.nodes[2] = &gateway{adminPort: 1}, &gateway{adminPort: 1}
	o := c.outcome(streamSamples{}, 1000)
	if o.killed != "n2" || o.killedClients != 333 || o.killedOwned != 5 {
		t.Fatalf("outcome %+v; want n2 killed with 333 of 1,000 clients", o)
	}
	if o.owned["n1"] != -1 || len(o.owned) != 2 {
		t.Fatalf("owned %v: want the two live nodes, unknown (-1)", o.owned)
	}
}

// With the killed node's clients reconnected and bidders sniping, the
// failover row judges the survivors and the reconnected clients apart,
// every resume recovered and exact, no price back and no bid sent twice;
// each fault misses its own target.
func TestClusterTableFailoverResumesAndBids(t *testing.T) {
	good := func() loadOutcome {
		o := clusterOutcomeOf(t, "cluster-failover", 400, 30)
		o.cluster.killed, o.cluster.killedOwned, o.cluster.killedClients, o.cluster.afterKill = "n1", 4, 334, 110
		o.res.AfterMark.N, o.res.AfterMark.Max, o.res.AfterMark.P50 = 666, 3000, 2900
		o.res.Drops, o.res.Duplicates, o.res.Restates = 7000, 0, 5000
		o.res.Resume = &loadgen.ResumeStats{Clients: 334, Products: 3340, Recovered: 3340, Replayed: 700, Raced: 400, Drops: 2400, Skipped: 3,
			Took: loadgen.Summary{P50: 500, Max: 700}, AfterMark: loadgen.Summary{N: 334, Max: 2950, P50: 2900}}
		o.cluster.bids = &bidOutcome{lots: 6, bidders: 3, requests: 18, accepted: 6, inFlight: 15, killedLots: 4, onKilled: 12, inFlightKilled: 9}
		return o
	}
	name := "| 1,000 clients × 10/s, 3 nodes, busiest owner killed"
	md := (&report{quick: true, began: time.Now(), loads: []loadOutcome{good()}}).markdown()
	for _, want := range []string{
		name + ": n1 killed (owned 4 of 10 products) | every surviving client (666) gets a post-kill change of every product within 5 s | 666 of them, worst 3.00 s (median 2.90 s); 0 survivors missed a product | met |",
		name + " | the killed node's clients (334), reconnected, get a post-kill change of every product within 5 s | 334 reconnected (0 found no node), worst 2.95 s (median 2.90 s); 0 missed a product; reconnect to the resume's reply p50 500 ms, max 700 ms | met |",
		name + " | 0 price regressions | 0 regressions (0 duplicates in all) | met |",
		name + " | every resume within `history` (64) recovered | 3340 of 3340 products resumed recovered; 0 not although within history, 0 on a new epoch | met |",
		name + " | each recovered resume delivers exactly the missed changes (none missing, none twice) | 700 changes replayed: 0 missing, 0 replays not one in-order run of the missed changes; 400 raced live repeats ignored | met |",
		name + " | (no target) drops | 7000: 2400 on the 334 reconnected clients (3 of them live changes superseded right after a replay), 4600 on the survivors",
		name + " | 0 repeated (user, amount) bids at the simulator | 0 repeated; 18 bids by 3 bidders on 6 lots (6 accepted), 15 in flight at the kill; 12 on the 4 lots the killed node owned, 9 of them in flight | met |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in:\n%s", want, md)
		}
	}
	for _, bad := range []struct {
		target string
		spoil  func(*loadOutcome)
		want   string
	}{
		{"the killed node's clients", func(o *loadOutcome) { o.res.Resume.AfterMark.Max = 5200 }, "**missed**"},
		{"the killed node's clients", func(o *loadOutcome) { o.res.Resume.Failed = 1 }, "**missed**"},
		{"0 price regressions", func(o *loadOutcome) { o.res.Regressions, o.res.Duplicates = 1, 1 }, "**missed**"},
		{"every resume within", func(o *loadOutcome) { o.res.Resume.Recovered--; o.res.Resume.UnrecoveredWithin++ }, "**missed**"},
		{"every resume within", func(o *loadOutcome) { o.res.Resume.Products = 0 }, "not shown: no client resumed"},
		{"each recovered resume", func(o *loadOutcome) { o.res.Resume.Gaps = 1 }, "**missed**"},
		{"each recovered resume", func(o *loadOutcome) { o.res.Resume.Broken = 1 }, "**missed**"},
		{"0 repeated (user, amount) bids", func(o *loadOutcome) { o.cluster.bids.repeated = 1 }, "**missed**"},
		{"0 repeated (user, amount) bids", func(o *loadOutcome) { o.cluster.bids.inFlightKilled = 0 }, "not shown: no bid of the killed node's was in flight at the kill"},
	} {
		o := good()
		bad.spoil(&o)
		md := (&report{quick: true, began: time.Now(), loads: []loadOutcome{o}}).markdown()
		if got := row(t, md, name+" | "+bad.target); !strings.HasSuffix(got, bad.want+" |") && !strings.Contains(got, "| "+bad.want) {
			t.Errorf("%s: %s", bad.target, got)
		}
	}
}
