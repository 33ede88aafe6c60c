package main

import (
	"fmt"
	"strings"

	"github.com/nellis-edge/gateway/bench/loadgen"
)

// lotGroups are loadgen.Result.Groups in the order they are shown.
var lotGroups = []struct{ key, label string }{
	{"stream", "lots on a stream"},
	{"polled", "polled lots"},
	{"closing", "every lot in its last 60 s"},
}

// logLots prints a night's groups in the driver's log.
func logLots(o loadOutcome) {
	for _, g := range lotGroups {
		r := o.res.Groups[g.key]
		logf("%s: %s: %d of %d delivered (%d drops), p99 %.2f ms", o.spec.label(), g.label, r.Delivered, r.Expected, r.Drops, r.Latency.P99)
	}
	logf("%s: %d upstream connections open (%d accepted), gateway RSS %.0f MiB (peak %.0f), clients set up in %.1f s",
		o.spec.label(), o.upOpen, o.upAccepted, float64(o.gwRSS)/1024, float64(o.gwPeak)/1024, o.ready.SetupSecs)
}

// lotsTable is the section of the auction-night rows, with their targets
// (issue 16's "done when").
func (r *report) lotsTable(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	var nights []loadOutcome
	var single *loadgen.Summary // c10: the fewest products measured
	for _, o := range r.loads {
		if o.spec.lots != nil {
			nights = append(nights, o)
		}
		if o.spec.key == "c10" {
			single = &o.res.Latency
		}
	}
	if len(nights) == 0 {
		return
	}
	w("\n#### Thousands of lots\n\n")
	w("An auction night: the simulator serves h2 over TLS (the gateway trusts it by `upstream_ca`), each client watches 50 lots (20 clients a lot), " +
		"bids arrive round-robin over every lot, and the lots close one after another, a tenth of them inside the window. " +
		"A (client, lot) pair counts as on a stream when any of its changes came by SSE; \"last 60 s\" holds every change due in its lot's last minute, " +
		"whatever its source. Changes due after a lot's close are not expected (the simulator refuses those bids).\n\n")
	w("| scenario | group | (client, lot) pairs | expected | delivered | drops | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, o := range nights {
		for _, g := range lotGroups {
			r := o.res.Groups[g.key]
			w("| %s | %s | %d | %d | %d | %d | %s | %s | %s |\n", o.spec.name, g.label, r.Pairs, r.Expected, r.Delivered, r.Drops,
				trim(r.Latency.P50), trim(r.Latency.P99), trim(r.Latency.Max))
		}
	}
	w("\n| scenario | upstream connections open (accepted) | gateway RSS MiB (peak) | gateway CPU (%% of a core) | bids refused (lot closed) |\n|---|---|---|---|---|\n")
	for _, o := range nights {
		w("| %s | %d (%d) | %.0f (%.0f) | %.0f%% | %d |\n", o.spec.name, o.upOpen, o.upAccepted,
			float64(o.gwRSS)/1024, float64(o.gwPeak)/1024, 100*o.gwCPU.Seconds()/o.spec.window.Seconds(), o.play.Failed)
	}
	w("\n| scenario | target | measured | verdict |\n|---|---|---|---|\n")
	for _, o := range nights {
		c := o.res.Groups["closing"]
		w("| %s | every lot in its last 60 s: no drops | %d drops of %d | %s |\n", o.spec.name, c.Drops, c.Expected, verdict(float64(c.Drops), 0, true, ""))
		if single != nil {
			w("| %s | last 60 s: p99 ≤ 2× the 10-client row's (%s ms) | p99 %s ms | %s |\n", o.spec.name, trim(2*single.P99), trim(c.Latency.P99),
				verdict(c.Latency.P99, 2*single.P99, true, " ms"))
		}
		w("| %s | ≤ 36 upstream connections (h2) | %d open | %s |\n", o.spec.name, o.upOpen, verdict(float64(o.upOpen), 36, true, ""))
		w("| %s | gateway RSS < 1 GiB | %.0f MiB peak | %s |\n", o.spec.name, float64(o.gwPeak)/1024, verdict(float64(o.gwPeak)/1024, 1024, true, " MiB"))
	}
}
