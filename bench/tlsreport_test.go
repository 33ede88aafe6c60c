package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/bench/loadgen"
)

// outcomeOf is a load outcome of the scenario keyed key, with p99 and drops.
func outcomeOf(t *testing.T, key string, p99 float64, drops int64) loadOutcome {
	t.Helper()
	specs := withTLS(withFloor(withShared(loadSpecs(true))))
	i := slices.IndexFunc(specs, func(s loadSpec) bool { return s.key == key })
	if i < 0 {
		t.Fatalf("no scenario %s", key)
	}
	return loadOutcome{spec: specs[i], res: loadgen.Result{Clients: specs[i].clients, Open: specs[i].clients,
		Expected: 1000, Delivered: 1000 - drops, Drops: drops, Latency: loadgen.Summary{P99: p99}}}
}

// row is the line of md that starts with prefix.
func row(t *testing.T, md, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("no row %q in:\n%s", prefix, md)
	return ""
}

// Each TLS row stands beside its plain twin with the ratio of their p99s
// and the bound: 1.25× at 10, 1,000 and 10,000 clients, 2× and no
// drops at 100,000 deliveries/s.
func TestTLSTableRatiosAndTargets(t *testing.T) {
	r := &report{quick: true, began: time.Now(), loads: []loadOutcome{
		outcomeOf(t, "c10", 2, 0), outcomeOf(t, "tls-c10", 2.4, 0),
		outcomeOf(t, "floor-c10", 1, 0), outcomeOf(t, "floor-tls-c10", 1.5, 0),
		outcomeOf(t, "c1k", 10, 0), outcomeOf(t, "tls-c1k", 15, 0),
		outcomeOf(t, "100k", 40, 0), outcomeOf(t, "tls-100k", 60, 3),
		outcomeOf(t, "c10k", 100, 0), outcomeOf(t, "tls-c10k", 190, 0),
	}}
	md := r.markdown()
	_, part, ok := strings.Cut(md, "#### TLS beside plain")
	if !ok {
		t.Fatalf("no TLS table:\n%s", md)
	}
	for prefix, want := range map[string]string{
		"| 10 clients × 10/s, TLS |":     "| 2.00 | 2.40 | 1.20× | 0 | 1.00 | 1.50 | 1.50× | TLS p99 ≤ 1.25× plain | met |",
		"| 1,000 clients × 10/s, TLS |":  "| 10.0 | 15.0 | 1.50× | 0 | – | – | – | TLS p99 ≤ 1.25× plain | **missed** by 0.25× (1.2×) |",
		"| 10,000 clients × 2/s, TLS |":  "| 100 | 190 | 1.90× | 0 | – | – | – | TLS p99 ≤ 1.25× plain | **missed**",
		"| 1,000 clients × 100/s, TLS |": "| 40.0 | 60.0 | 1.50× | 3 | – | – | – | TLS p99 ≤ 2× plain, no drops | **missed**: 3 drops |",
	} {
		if got := row(t, part, prefix); !strings.Contains(got, want) {
			t.Errorf("row %s\n got %s\nwant …%s", prefix, got, want)
		}
	}
	if strings.Contains(part, "Idle sockets") {
		t.Errorf("an idle table without an idle run:\n%s", part)
	}
}

// The idle TLS socket meets ≤ 10 KiB, or the floor's TLS figure + 1 KiB;
// what TLS adds is set beside what it adds to the floor; 19,000 held
// counts only for a 10-minute hold.
func TestTLSIdleTargets(t *testing.T) {
	idle := func(key string, perConn float64, open int, hold time.Duration) idleOutcome {
		i := slices.IndexFunc(idleTargets, func(t idleTarget) bool { return t.key == key })
		return idleOutcome{target: idleTargets[i], conns: 19_000, wanted: 19_000, baseRSS: 50_000,
			loadedRSS: 50_000 + int64(perConn*19_000), endRSS: 50_000 + int64(perConn*19_000), open: open, hold: hold}
	}
	for _, tc := range []struct {
		name       string
		outs       []idleOutcome
		kib, added string // the two verdicts' rows, as printed
		held       string
	}{
		{
			name: "floor-relative, held",
			outs: []idleOutcome{idle("idle", 4, 19_000, 10*time.Minute), idle("idle-tls", 20, 19_000, 10*time.Minute),
				idle("floor-idle", 24, 19_000, 10*time.Minute), idle("floor-idle-tls", 49.5, 19_000, 10*time.Minute)},
			kib:   "| 20.0 KiB (floor 49.5 KiB) | met |",
			added: "| gateway +16.0 KiB, floor +25.5 KiB | met |",
			held:  "| 19000 of 19000 open after 10m0s | met |",
		},
		{
			name: "no floor, short hold",
			outs: []idleOutcome{idle("idle", 4, 2_000, 10*time.Second), idle("idle-tls", 12, 2_000, 10*time.Second)},
			kib:  "| 12.0 KiB | **missed** by 2.00 KiB (1.2×) |",
			held: "| 2000 of 19000 open after 10s | **missed**",
		},
		{
			name: "TLS adds more than to the floor",
			outs: []idleOutcome{idle("idle", 4, 19_000, 10*time.Minute), idle("idle-tls", 9, 19_000, 10*time.Minute),
				idle("floor-idle", 30, 19_000, 10*time.Minute), idle("floor-idle-tls", 32, 19_000, 10*time.Minute)},
			kib:   "| 9.00 KiB (floor 32.0 KiB) | met |",
			added: "| gateway +5.00 KiB, floor +2.00 KiB | **missed** by 2.00 KiB (1.7×) |",
			held:  "| 19000 of 19000 open after 10m0s | met |",
		},
	} {
		r := &report{quick: true, began: time.Now()}
		r.setIdle(tc.outs)
		if r.idle == nil || r.idle.target.key != "idle" {
			t.Fatalf("%s: the plain idle outcome is not the report's idle", tc.name)
		}
		_, md, _ := strings.Cut(r.markdown(), "#### TLS beside plain")
		if got := row(t, md, "| ≤ 10 KiB gateway RSS per idle TLS socket"); !strings.HasSuffix(got, tc.kib) {
			t.Errorf("%s: %s\nwant …%s", tc.name, got, tc.kib)
		}
		if tc.added != "" {
			if got := row(t, md, "| what TLS adds per idle socket"); !strings.HasSuffix(got, tc.added) {
				t.Errorf("%s: %s\nwant …%s", tc.name, got, tc.added)
			}
		} else if strings.Contains(md, "what TLS adds") {
			t.Errorf("%s: a floor comparison without a floor run", tc.name)
		}
		if got := row(t, md, "| 19000 TLS sockets held 10 min"); !strings.Contains(got, tc.held) {
			t.Errorf("%s: %s\nwant …%s", tc.name, got, tc.held)
		}
		if !strings.Contains(md, "| gateway, TLS | 19000 of 19000 |") {
			t.Errorf("%s: no idle row for the TLS gateway:\n%s", tc.name, md)
		}
	}
}
