package loadgen

import (
	"time"
)

// tally counts one product's changes, or one group's, for one client.
type tally struct {
	delivered int64
	// bySSE counts the changes that came by SSE, the rest came by a
	// poll or a reconcile: a pair is "on a stream" only when all came
	// by SSE.
	bySSE int64
	lat   []time.Duration
}

// tallyGroups records a change in the window for Result.Groups. A change
// due at or after its lot's close is not expected (only a soft-close
// extension lets one through) and is left out.
func (c *client) tallyGroups(p *runPlan, ch change, due time.Time, lat time.Duration) {
	closeAt, known := p.Closes[ch.productID]
	if known && !due.Before(closeAt) {
		return
	}
	if c.tallies == nil {
		c.tallies = make(map[int64]*tally, len(c.products))
	}
	t := c.tallies[ch.productID]
	if t == nil {
		t = &tally{}
		c.tallies[ch.productID] = t
	}
	t.delivered++
	if ch.source == "sse" {
		t.bySSE++
		c.bySSE.delivered++
		c.bySSE.lat = append(c.bySSE.lat, lat)
	}
	t.lat = append(t.lat, lat)
	if known && !due.Before(closeAt.Add(-p.LastWindow)) {
		c.closing.delivered++
		c.closing.lat = append(c.closing.lat, lat)
	}
}

// expected is how many of product id's events are due in [from, until)
// and before its close.
func (p *runPlan) expected(id int64, from, until time.Time) int64 {
	if closeAt, ok := p.Closes[id]; ok && closeAt.Before(until) {
		until = closeAt
	}
	i, ok := p.index[id]
	if !ok || !from.Before(until) {
		return 0
	}
	sc := p.Schedule
	// Events k0 … k1-1 are due in the span; product i's are those with
	// k mod P = i.
	k0 := sc.Count(sc.Start, from)
	k1 := k0 + sc.Count(from, until)
	n := int64(len(sc.Products))
	upTo := func(k int64) int64 { // product i's events among 0 … k-1
		if k <= int64(i) {
			return 0
		}
		return (k - int64(i) + n - 1) / n
	}
	return upTo(k1) - upTo(k0)
}

// groups merges the clients' tallies into Result.Groups.
func groups(p *runPlan, clients []*client) map[string]Group {
	type acc struct {
		g          Group
		lat, stale []time.Duration
	}
	all := map[string]*acc{"stream": {}, "polled": {}, "closing": {}, "sse": {}}
	remote := map[string]map[int64]bool{}
	if p.Remote != nil {
		all["cross"], all["local"] = &acc{}, &acc{}
		for url, ids := range p.Remote {
			remote[url] = map[int64]bool{}
			for _, id := range ids {
				remote[url][id] = true
			}
		}
	}
	for _, c := range clients {
		for _, id := range c.products {
			t := c.tallies[id]
			if p.Remote != nil {
				a := all["local"]
				if remote[c.url][id] {
					a = all["cross"]
				}
				a.g.Pairs++
				a.g.Expected += p.expected(id, p.MeasureFrom, p.MeasureUntil)
				if t != nil {
					a.g.Delivered += t.delivered
					a.lat = append(a.lat, t.lat...)
				}
			}
			// On a stream for the whole window: every change the pair
			// had came by SSE. A lot polled for most of the window and
			// promoted near its close is polled: its polled changes'
			// latency is a poll's.
			name := "polled"
			if t != nil && t.bySSE > 0 && t.bySSE == t.delivered {
				name = "stream"
			}
			a := all[name]
			expected := p.expected(id, p.MeasureFrom, p.MeasureUntil)
			if expected > 0 || t != nil { // a lot with no change due is in neither group
				a.g.Pairs++
			}
			a.g.Expected += expected
			if t != nil {
				a.g.Delivered += t.delivered
				a.lat = append(a.lat, t.lat...)
			}
			var covered int64
			a.stale, covered = p.coverage(id, c.sightings[id], a.stale, p.MeasureFrom)
			a.g.Covered += covered
			if closeAt, ok := p.Closes[id]; ok {
				from := closeAt.Add(-p.LastWindow)
				if from.Before(p.MeasureFrom) {
					from = p.MeasureFrom
				}
				if n := p.expected(id, from, p.MeasureUntil); n > 0 {
					cl := all["closing"]
					cl.g.Pairs++
					cl.g.Expected += n
					cl.stale, covered = p.coverage(id, c.sightings[id], cl.stale, from)
					cl.g.Covered += covered
				}
			}
		}
		all["closing"].g.Delivered += c.closing.delivered
		all["closing"].lat = append(all["closing"].lat, c.closing.lat...)
		// Every change that came by SSE, whichever its pair's group: its
		// latency is the stream path's alone.
		all["sse"].g.Expected += c.bySSE.delivered
		all["sse"].g.Delivered += c.bySSE.delivered
		all["sse"].lat = append(all["sse"].lat, c.bySSE.lat...)
	}
	out := make(map[string]Group, len(all))
	for name, a := range all {
		a.g.Drops = a.g.Expected - a.g.Delivered
		a.g.Latency = Summarize(a.lat)
		a.g.Staleness = Summarize(a.stale)
		out[name] = a.g
	}
	return out
}

// coverage finds, for each of product id's changes expected in the window
// from from on, the first sighting of it or a newer price, and appends its
// staleness (from the change's due time to that sighting; to DrainUntil
// for a change never covered, which was at least that stale) to stale. It
// returns how many changes were covered.
func (p *runPlan) coverage(id int64, seen []sighting, stale []time.Duration, from time.Time) ([]time.Duration, int64) {
	i, ok := p.index[id]
	if !ok {
		return stale, 0
	}
	sc := p.Schedule
	until := p.MeasureUntil
	if closeAt, ok := p.Closes[id]; ok && closeAt.Before(until) {
		until = closeAt
	}
	n := int64(len(sc.Products))
	k0 := sc.Count(sc.Start, from)
	k1 := k0 + sc.Count(from, until)
	k := k0 + (int64(i)-k0%n+n)%n // product i's first event at or after k0
	var covered int64
	for ; k < k1; k += n {
		for len(seen) > 0 && seen[0].k < k {
			seen = seen[1:]
		}
		if len(seen) == 0 {
			// Still stale at the end: at least this stale.
			stale = append(stale, p.DrainUntil.Sub(sc.At(k)))
			continue
		}
		covered++
		stale = append(stale, seen[0].at.Sub(sc.At(k)))
	}
	return stale, covered
}
