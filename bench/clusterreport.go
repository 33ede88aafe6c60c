package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// logCluster prints a cluster scenario's own figures in the driver's log.
func logCluster(o loadOutcome) {
	c := o.cluster
	logf("%s: upstream streams per product over %d samples: at most %d, %d samples with a product on two, %d with a product on none; owned at the end %s; NATS %.0f%% of a core of the total %.0f%%",
		o.spec.label(), c.streams.n, c.streams.most, c.streams.doubled, c.streams.missing, ownedText(c.owned),
		100*c.natsCPU.Seconds()/o.spec.window.Seconds(), 100*o.gwCPU.Seconds()/o.spec.window.Seconds())
	if c.killed != "" {
		m := o.res.AfterMark
		logf("%s: killed %s (owned %d products, %d clients): %d surviving clients got a post-kill change of every product, worst %.2f s, median %.2f s; %d clients missed a product",
			o.spec.label(), c.killed, c.killedOwned, c.killedClients, m.N, m.Max/1000, m.P50/1000, o.res.MarkMissing)
		if r := o.res.Resume; r != nil {
			logf("%s: %d clients reconnected (%d found no node; %d attempts failed, the first: %q): %d products resumed, %d recovered (%d not although within history, %d on a new epoch), %d changes replayed, %d gaps, %d replays broken, %d raced, %d live changes skipped after a replay; resume took p50 %.0f ms, max %.0f ms; their first post-kill change of every product worst %.2f s (%d missed a product); %d regressions",
				o.spec.label(), r.Clients, r.Failed, r.Retries, r.FirstErr, r.Products, r.Recovered, r.UnrecoveredWithin, r.NewEpoch, r.Replayed, r.Gaps, r.Broken, r.Raced, r.Skipped,
				r.Took.P50, r.Took.Max, r.AfterMark.Max/1000, r.MarkMissing, o.res.Regressions)
		}
		if b := c.bids; b != nil {
			logf("%s: bids at the simulator: %d requests by %d bidders on %d lots (%d accepted), %d in flight at the kill; %d on the %d lots the killed node owned, %d of them in flight; %d repeated (user, lot, amount)",
				o.spec.label(), b.requests, b.bidders, b.lots, b.accepted, b.inFlight, b.onKilled, b.killedLots, b.inFlightKilled, b.repeated)
		}
	}
}

func ownedText(owned map[string]int) string {
	parts := []string{}
	for _, name := range slices.Sorted(maps.Keys(owned)) {
		parts = append(parts, fmt.Sprintf("%s %d", name, owned[name]))
	}
	return strings.Join(parts, ", ")
}

// clusterTable is the section of the cluster rows with issue 15's targets,
// against c1k (the same load on one process) from the same run.
func (r *report) clusterTable(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	var rows []loadOutcome
	var single *loadOutcome
	for i, o := range r.loads {
		if o.cluster != nil {
			rows = append(rows, o)
		}
		if o.spec.key == "c1k" {
			single = &r.loads[i]
		}
	}
	if len(rows) == 0 {
		return
	}
	w("\n#### Cluster (three gateway processes over one NATS process)\n\n")
	w("Each cluster row is c1k's load served by three gateway processes (bin/caddy, `cluster` with `lease %s`) "+
		"joined over one bin/nellis-nats process, the clients spread evenly over the nodes (client i on node i mod 3), "+
		"every client monitoring every product, so about two thirds of the deliveries reach their client through another node "+
		"than the product's owner. Cross-node latency is over the changes a client got of the products another node owned "+
		"when the run was planned (each node's `/nellis/feeds`, read once every client monitored); local latency over the rest. CPU is the NATS process's and the three gateways' together (a killed node's up to its kill), "+
		"against c1k's single gateway. Upstream streams are the simulator's open streams per product, read every second of the window.\n\n",
		clusterLease)
	w("| scenario | target | measured | verdict |\n|---|---|---|---|\n")
	failover := false
	for _, o := range rows {
		c, res := o.cluster, o.res
		if c.killed == "" {
			cross, split := res.Groups["cross"]
			local := res.Groups["local"]
			p99, measured := res.Latency.P99, fmt.Sprintf("p99 %s ms over every delivery (not split)", trim(res.Latency.P99))
			if split {
				p99 = cross.Latency.P99
				measured = fmt.Sprintf("cross-node p99 %s ms over %d deliveries (local %s ms over %d; all %s ms)",
					trim(cross.Latency.P99), cross.Delivered, trim(local.Latency.P99), local.Delivered, trim(res.Latency.P99))
			}
			if single != nil {
				bound := 2 * single.res.Latency.P99
				w("| %s | cross-node p99 ≤ 2× c1k's p99 (%s ms) | %s | %s |\n", o.spec.name, trim(bound), measured, verdict(p99, bound, true, " ms"))
				cpuBound := 1.5 * single.gwCPUPer1k()
				w("| %s | CPU per delivery ≤ 1.5× c1k's (%s ms / 1k) | %s ms / 1k | %s |\n", o.spec.name, trim(cpuBound), trim(o.gwCPUPer1k()), verdict(o.gwCPUPer1k(), cpuBound, true, " ms"))
			} else {
				w("| %s | p99 and CPU against c1k | c1k was not run (-only) | – |\n", o.spec.name)
			}
			w("| %s | 0 drops, 0 duplicates | %d drops of %d, %d duplicates | %s |\n", o.spec.name, res.Drops, res.Expected, res.Duplicates,
				verdict(float64(res.Drops+res.Duplicates), 0, true, ""))
			bad := c.streams.doubled + c.streams.missing
			if c.streams.n == 0 {
				bad = 1
			}
			w("| %s | (no target) where the CPU went, who owned what | %.0f%% of a core in all, NATS %.0f%% of it; products owned when planned: %s (%d unowned), at the end: %s | – |\n",
				o.spec.name, 100*o.gwCPU.Seconds()/o.spec.window.Seconds(), 100*c.natsCPU.Seconds()/o.spec.window.Seconds(),
				ownedText(c.ownedBefore), c.unowned, ownedText(c.owned))
			w("| %s | exactly one upstream stream per product at every 1 s sample | %d samples: at most %d on a product, %d with one on two, %d with one on none | %s |\n",
				o.spec.name, c.streams.n, c.streams.most, c.streams.doubled, c.streams.missing, verdict(float64(bad), 0, true, " samples"))
			continue
		}
		failoverRows(w, o)
		failover = true
	}
	if !failover {
		return
	}
	w("\nIn cluster-failover the killed node's clients reconnect at once to the other nodes (round-robin), sign in and send "+
		"`resume` with the last epoch and seq they saw of each product, as the extension does; a resume is recovered when the reply says so, "+
		"and its replay must be exactly the missed changes as one in-order run (a replay is queued whole). Live pushes that reach the new socket "+
		"before or after the replay with a seq it holds are the race docs/protocol.md allows (the client ignores them): counted as raced, "+
		"not as duplicates. %d bidders (one per node) snipe on %d lots of their own, not the schedule's, with `snipeSeconds` %d, the windows "+
		"opening from %s before the kill, every %s; the simulator holds each bid %s before placing it, so the killed owner dies with bids in flight "+
		"placed only after the new owners took over, which see those lots in their window at the old price. The repeated bids are the (user, lot, amount) requests the simulator received more than once (`GET /_sim/bids`), "+
		"accepted or refused: Nellis refuses a user's repeated amount, so a repeat shows as a refusal.\n",
		bidderCount, bidLotCount, snipeSeconds, firstOpen, openEvery, bidDelay)
}

// failoverRows are cluster-failover's targets.
func failoverRows(w func(string, ...any), o loadOutcome) {
	c, res, name := o.cluster, o.res, o.spec.name
	m, r := res.AfterMark, res.Resume
	if r == nil {
		// No reconnect: a client of the killed node can have no change
		// after the kill, so every survivor passed when the clients
		// missing a product are exactly the killed node's.
		missed := max(res.MarkMissing-c.killedClients, 0)
		w("| %s: %s killed (owned %d of %d products) | every surviving client (%d) gets a post-kill change of every product within 5 s | %d of them, worst %s s (median %s s); %d survivors missed a product | %s |\n",
			name, c.killed, c.killedOwned, o.spec.products, res.Clients-c.killedClients, m.N, trim(m.Max/1000), trim(m.P50/1000), missed,
			verdict(m.Max/1000+float64(missed)*1e9, 5, true, " s"))
		w("| %s | 0 price regressions | %d duplicates or regressions | %s |\n", name, res.Duplicates, verdict(float64(res.Duplicates), 0, true, ""))
		// The killed node's clients lose every change from the kill on;
		// while the dead owner's lease runs out nobody streams its
		// products, so the survivors get those seconds' changes as one
		// snapshot (the latest price, "restated"), not one by one.
		deadDrops := int64(c.killedClients) * c.afterKill
		w("| %s | (no target) drops | %d: the killed node's %d clients × %d events after the kill = %d, and %d on the survivors: the dead owner's products' changes until the takeover, which reached them as the new owner's snapshot (%d restated) | – |\n",
			name, res.Drops, c.killedClients, c.afterKill, deadDrops, res.Drops-deadDrops, res.Restates)
	} else {
		// Without their socket: reconnected; with it: survivors.
		survivors := res.Clients - r.Clients
		w("| %s: %s killed (owned %d of %d products) | every surviving client (%d) gets a post-kill change of every product within 5 s | %d of them, worst %s s (median %s s); %d survivors missed a product | %s |\n",
			name, c.killed, c.killedOwned, o.spec.products, survivors, m.N, trim(m.Max/1000), trim(m.P50/1000), res.MarkMissing,
			verdict(m.Max/1000+float64(res.MarkMissing)*1e9, 5, true, " s"))
		rm := r.AfterMark
		w("| %s | the killed node's clients (%d), reconnected, get a post-kill change of every product within 5 s | %d reconnected (%d found no node), worst %s s (median %s s); %d missed a product; reconnect to the resume's reply p50 %s ms, max %s ms | %s |\n",
			name, c.killedClients, r.Clients, r.Failed, trim(rm.Max/1000), trim(rm.P50/1000), r.MarkMissing, trim(r.Took.P50), trim(r.Took.Max),
			verdict(rm.Max/1000+float64(r.MarkMissing+r.Failed+max(c.killedClients-r.Clients, 0))*1e9, 5, true, " s"))
		w("| %s | 0 price regressions | %d regressions (%d duplicates in all) | %s |\n", name, res.Regressions, res.Duplicates,
			verdict(float64(res.Regressions), 0, true, ""))
		notRecovered := r.UnrecoveredWithin + r.NewEpoch
		w("| %s | every resume within `history` (%d) recovered | %d of %d products resumed recovered; %d not although within history, %d on a new epoch | %s |\n",
			name, feedHistory, r.Recovered, r.Products, r.UnrecoveredWithin, r.NewEpoch, resumeVerdict(r.Products, notRecovered))
		w("| %s | each recovered resume delivers exactly the missed changes (none missing, none twice) | %d changes replayed: %d missing, %d replays not one in-order run of the missed changes; %d raced live repeats ignored | %s |\n",
			name, r.Replayed, r.Gaps, r.Broken, r.Raced, resumeVerdict(r.Products, int(r.Gaps)+r.Broken))
		w("| %s | (no target) drops | %d: %d on the %d reconnected clients (%d of them live changes superseded right after a replay), %d on the survivors: the dead owner's products' changes until the takeover, which reached every client as the new owner's snapshot (%d restated) | – |\n",
			name, res.Drops, r.Drops, r.Clients, r.Skipped, res.Drops-r.Drops, res.Restates)
	}
	if b := c.bids; b != nil {
		v := verdict(float64(b.repeated), 0, true, "")
		if b.inFlightKilled == 0 {
			v = "not shown: no bid of the killed node's was in flight at the kill"
		}
		w("| %s | 0 repeated (user, amount) bids at the simulator | %d repeated; %d bids by %d bidders on %d lots (%d accepted), %d in flight at the kill; %d on the %d lots the killed node owned, %d of them in flight | %s |\n",
			name, b.repeated, b.requests, b.bidders, b.lots, b.accepted, b.inFlight, b.onKilled, b.killedLots, b.inFlightKilled, v)
	}
	w("| %s | never two upstream streams for a product | %d samples: at most %d on a product, %d with one on two (%d with one on none during the handover) | %s |\n",
		name, c.streams.n, c.streams.most, c.streams.doubled, c.streams.missing, verdict(float64(c.streams.doubled), 0, true, " samples"))
}

// resumeVerdict is met when resumes happened and bad is 0.
func resumeVerdict(resumed, bad int) string {
	if resumed == 0 {
		return "not shown: no client resumed"
	}
	return verdict(float64(bad), 0, true, "")
}
