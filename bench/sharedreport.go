package main

import (
	"fmt"
	"strings"
)

// Shared-token targets of issue 13.
const (
	sharedSetupSecs = 15.0
	sharedP99Ratio  = 1.2 // shared p99 / one-user-per-socket p99
)

// sharedTable writes issue 13's shared-token figures: each scenario with
// every client under one user beside the same load with a user per
// client, from the same run.
func (r *report) sharedTable(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	byKey := map[string]loadOutcome{}
	for _, o := range r.loads {
		byKey[o.spec.key] = o
	}
	var rows, targets []string
	for _, o := range r.loads {
		baseKey, ok := sharedBase[o.spec.key]
		if !ok {
			continue
		}
		for _, x := range []loadOutcome{byKey[baseKey], o} {
			if x.spec.key == "" {
				continue // the base did not run
			}
			res := x.res
			rows = append(rows, fmt.Sprintf("| %s | %d | %d | %d | %s | %s | %d | %s | %d | %d | %s |\n",
				x.spec.name, res.Clients, x.spec.userCount(), x.spec.products, trim(x.ready.SetupSecs), trim(res.StateSetupSecs),
				res.StatesMissing, deliveredPct(res.Delivered, res.Expected), res.Drops, res.Duplicates, trim(res.Latency.P99)))
		}
		res := o.res
		setupVerdict := verdict(res.StateSetupSecs, sharedSetupSecs, true, " s")
		if res.StatesMissing > 0 || o.ready.Failed > 0 {
			setupVerdict = "**missed**: not every client set up"
		}
		targets = append(targets,
			fmt.Sprintf("| %s | set up in ≤ %g s | %s s (%d first states missing, %d clients failed) | %s |\n", o.spec.name, sharedSetupSecs,
				trim(res.StateSetupSecs), res.StatesMissing, o.ready.Failed, setupVerdict),
			fmt.Sprintf("| %s | 100%% delivered | %s | %s |\n", o.spec.name, deliveredPct(res.Delivered, res.Expected),
				unlessFailed(o, verdict(float64(res.Drops), 0, true, " drops"))),
			fmt.Sprintf("| %s | no duplicates | %d | %s |\n", o.spec.name, res.Duplicates, verdict(float64(res.Duplicates), 0, true, "")))
		if base, ok := byKey[baseKey]; ok && base.res.Latency.P99 > 0 {
			q := ratio(res.Latency.P99, base.res.Latency.P99)
			targets = append(targets, fmt.Sprintf("| %s | p99 ≤ %g× one user per socket | %s ms vs %s ms: %s | %s |\n", o.spec.name, sharedP99Ratio,
				trim(res.Latency.P99), trim(base.res.Latency.P99), ratioText(q), unlessFailed(o, verdict(q, sharedP99Ratio, true, "×"))))
		}
	}
	if len(rows) == 0 {
		return
	}
	w("\n#### Shared token (issue 13)\n\n")
	w("Every client authenticates with the one token of user u0 (the old backend's shared AUTH_TOKEN), beside the same load with a user per client. " +
		"Setup runs from the first client's dial to the moment the last client had its first auctionState of every product it monitors " +
		"(the state each startMonitoring is answered with); \"replies\" is until the last startMonitoring reply.\n\n")
	w("| scenario | clients | users | products | setup s, replies | setup s, first states | first states missing | delivered | drops | duplicates | p99 ms |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range rows {
		w("%s", row)
	}
	w("\n| scenario | target | measured | verdict |\n|---|---|---|---|\n")
	for _, t := range targets {
		w("%s", t)
	}
}

// deliveredPct is delivered of expected as a percentage, exact at 100%
// only when nothing was lost.
func deliveredPct(delivered, expected int64) string {
	if expected == 0 {
		return "–"
	}
	if delivered == expected {
		return "100%"
	}
	return fmt.Sprintf("%.3f%%", min(99.999, 100*float64(delivered)/float64(expected)))
}

// unlessFailed is v, unless clients of o failed to set up: the figures of
// the few that did say nothing of the load the target is about.
func unlessFailed(o loadOutcome, v string) string {
	if o.ready.Failed > 0 {
		return fmt.Sprintf("**missed**: %d of %d clients failed to set up", o.ready.Failed, o.spec.clients)
	}
	return v
}
