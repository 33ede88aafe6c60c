package main

import (
	"fmt"
	"strings"

	"github.com/nellis-edge/gateway/bench/floor"
	"github.com/nellis-edge/gateway/bench/loadgen"
)

// floorTable writes the machine floor's rows, if the run had any, in a
// table of their own, each beside the gateway's p99 for the same scenario
// in this run: the floor is what any server could do here at the least.
func (r *report) floorTable(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	gatewayP99 := map[string]float64{}
	var rows []loadOutcome
	for _, o := range r.loads {
		if o.spec.floor {
			rows = append(rows, o)
		} else {
			gatewayP99[o.spec.key] = o.res.Latency.P99
		}
	}
	if len(rows) == 0 {
		return
	}
	w("\n#### Machine floor: a minimal WebSocket fan-out server, same clients\n\n")
	w("`bin/nellis-floor` (package `bench/floor`) in its own process, in place of the gateway and the simulator: it plays the same schedule itself, "+
		"frames each change once (a %d-byte message, about the gateway's auctionState) and writes the frame to every socket on GOMAXPROCS goroutines, "+
		"with no per-client work, queues or metrics. Latency runs from the scheduled emit time, as above; the server's CPU includes its emitter's.\n\n", floor.StateSize)
	w("| scenario | clients | events/s | window | expected | delivered | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | drops | duplicates | gateway p99 ms (this run) | server CPU ms / 1k deliveries | server CPU (%% of a core) | loadgen CPU (%% of a core) | server RSS MiB (peak) | emit lag p50 / p99 / max ms | other processes' CPU (%% of a core) before / during |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, o := range rows {
		l, res := o.res.Latency, o.res
		lag := loadgen.Summarize(o.play.Lags)
		secs := o.spec.window.Seconds()
		gw := "–"
		if p99, ok := gatewayP99[strings.TrimPrefix(o.spec.key, "floor-")]; ok {
			gw = trim(p99)
		}
		w("| %s | %d | %g | %s | %d | %d | %.0f | %s | %s | %s | %s | %s | %d | %d | %s | %s | %.0f%% | %.0f%% | %.1f (%.1f) | %s / %s / %s | %.0f%% / %.0f%% |\n",
			o.spec.name, res.Clients, o.spec.rate, o.spec.window, res.Expected, res.Delivered, res.DeliveriesPerSec,
			trim(l.P50), trim(l.P90), trim(l.P99), trim(l.P999), trim(l.Max), res.Drops, res.Duplicates, gw,
			trim(o.gwCPUPer1k()), 100*o.gwCPU.Seconds()/secs, 100*res.CPUSecs/secs,
			float64(o.gwRSS)/1024, float64(o.gwPeak)/1024, trim(lag.P50), trim(lag.P99), trim(lag.Max),
			100*o.busyBefore, 100*o.others.Seconds()/secs)
		if o.ready.Failed > 0 || res.Open < res.Clients {
			w("| ↳ problems | %d clients failed to connect (%s); %d sockets closed early (%s) ||||||||||||||||||||\n",
				o.ready.Failed, o.ready.FirstErr, res.Clients-res.Open, res.FirstClose)
		}
	}
}
