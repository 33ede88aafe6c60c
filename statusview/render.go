package statusview

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/metrics"
)

// Frame is what one redraw of the live view shows.
type Frame struct {
	// Address names the admin API the report came from.
	Address string
	Report  Report
	// Prev is the previous frame's report, nil on the first: delivery
	// latency is shown for the writes between the two.
	Prev *Report
}

// Render draws a frame as plain text: a header, the totals, the latency
// and one table row per feed. It draws no terminal control codes; the
// caller clears the screen between frames.
func Render(f Frame) string {
	var b strings.Builder
	r := f.Report
	state := "started"
	switch {
	case !r.Started:
		state = "starting"
	case r.Standalone:
		state = "STANDALONE (cluster unavailable: no NATS or JetStream; auto-bid paused)"
	}
	fmt.Fprintf(&b, "nellis edge · %s · %s · %s\n", f.Address, r.At.UTC().Format("2006-01-02 15:04:05 MST"), state)

	t := r.Totals
	fmt.Fprintf(&b, "feeds %d (%s) · streams open %d · stale %d · subscribers %d\n",
		t.Feeds, counts(t.FeedsBySource), t.OpenStreams, t.Stale, t.Subscribers)
	stored := ""
	if t.StoredUsers != nil {
		stored = fmt.Sprintf(" · %d users stored", *t.StoredUsers)
	}
	fmt.Fprintf(&b, "clients %d connected, %d authenticated, %d idle parked · users %d monitoring %d auctions%s\n",
		t.Connections, t.Authenticated, t.Parked, t.Users, t.MonitoredAuctions, stored)
	fmt.Fprintf(&b, "latency delivery %s · processing %s\n",
		deliveryLatency(r, f.Prev), processingLatency(r.Latency.Processing))
	if p := r.PollBudget; p != nil {
		b.WriteString(pollBudget(*p))
	}
	b.WriteByte('\n')

	if len(r.Feeds) == 0 {
		b.WriteString("no feeds: no product is being watched\n")
		return b.String()
	}
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRODUCT\tSOURCE\tBREAKER\tLAST EVENT\tLAST BYTE\tSUBS\tSEQ\tNEXT POLL\tAGE\tNOTE")
	short := r.PollBudget != nil && r.PollBudget.Short
	for _, feed := range r.Feeds {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n",
			feed.ProductID, feed.Source, feed.Breaker,
			age(feed.SinceLastEvent), age(feed.SinceLastByte),
			feed.Subscribers, feed.Seq, nextPoll(r.At, feed.NextPoll), age(feed.Staleness), note(r.At, feed, short))
	}
	_ = tw.Flush() // writes to a strings.Builder cannot fail
	// A row without a note would end in the padding of its last cell.
	for line := range strings.Lines(table.String()) {
		b.WriteString(strings.TrimRight(line, " \n"))
		b.WriteByte('\n')
	}
	return b.String()
}

// counts lists a count map as "a 1, b 2", in key order, zeros left out.
func counts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// deliveryLatency describes the writes since the previous report, or since
// the process started on the first frame.
func deliveryLatency(r Report, prev *Report) string {
	h := r.Latency.Delivery
	window := "since start"
	if prev != nil && r.At.After(prev.At) {
		h = h.Since(prev.Latency.Delivery)
		window = "in the last " + approx(r.At.Sub(prev.At))
	}
	p50, ok := h.Quantile(0.5)
	if !ok {
		return "no writes " + window
	}
	p99, _ := h.Quantile(0.99)
	return fmt.Sprintf("p50 %s p99 %s (%d writes %s)", seconds(p50), seconds(p99), h.Count, window)
}

func processingLatency(p metrics.Recent) string {
	if p.Samples == 0 {
		return "no changes yet"
	}
	return fmt.Sprintf("p50 %s p99 %s (last %d changes)", seconds(p.P50), seconds(p.P99), p.Samples)
}

// age shows a number of seconds ago; negative means never.
func age(s float64) string {
	if s < 0 {
		return "-"
	}
	return approx(time.Duration(s * float64(time.Second)))
}

// approx shows a duration to about two significant figures: 0.4s, 12s,
// 3m04s, 2h05m.
func approx(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < 100*time.Second:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// seconds shows a latency: microseconds below a millisecond, where a
// healthy gateway delivers.
func seconds(s float64) string {
	switch {
	case s < 0.001:
		return fmt.Sprintf("%.0fµs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.1fms", s*1e3)
	}
	return fmt.Sprintf("%.2fs", s)
}

// nextPoll shows when the next snapshot poll is due, relative to the
// gateway's clock: "-" while one is in flight or polling stopped.
func nextPoll(at, next time.Time) string {
	if next.IsZero() {
		return "-"
	}
	if !next.After(at) {
		return "due"
	}
	return "in " + approx(next.Sub(at))
}

// pollBudget is the line on the polls: what poll_rate covers, and how
// often a polled lot is refreshed when it does not.
func pollBudget(p hub.PollBudget) string {
	line := fmt.Sprintf("polls %d lots (%d closing) at %.3g/s, needed %.3g/s", p.PolledLots, p.ClosingPolledLots, p.Rate, p.Needed)
	if p.UnknownLots > 0 {
		// Until its first snapshot a lot's close time is unknown, so it
		// cannot be given a stream for its last minute.
		line += fmt.Sprintf(" · %d lots not known yet (first snapshots take %s)", p.UnknownLots, every(p.FirstSnapshotsIn))
	}
	if !p.Short {
		return line + " · covered\n"
	}
	return fmt.Sprintf("%s · BUDGET SHORT: a polled lot is refreshed every %s, a closing one every %s (raise poll_rate or max_streams)\n",
		line, every(p.Interval), every(p.ClosingInterval))
}

// every shows an expected interval in seconds; negative means never.
func every(s float64) string {
	if s < 0 {
		return "never"
	}
	return approx(time.Duration(s * float64(time.Second)))
}

// note explains what is unusual about a feed. short: the poll budget is.
func note(at time.Time, f hub.FeedStatus, short bool) string {
	var notes []string
	if Stale(f) {
		notes = append(notes, "STALE")
	}
	if f.Degraded != "" {
		notes = append(notes, f.Degraded)
	}
	if short && f.ExpectedStaleness != 0 {
		notes = append(notes, "polled every "+every(f.ExpectedStaleness))
	}
	if f.StreamCapped {
		notes = append(notes, "stream capped (max_streams)")
	}
	switch {
	case f.Role == "owner":
		notes = append(notes, "owned here (cluster)")
	case f.Role == "reader" && f.Owner != "":
		notes = append(notes, "read from "+f.Owner+"'s log (cluster)")
	case f.Role == "reader":
		notes = append(notes, "read from the log, no owner known (cluster)")
	}
	if !f.LingerUntil.IsZero() {
		closes := "closing"
		if f.LingerUntil.After(at) {
			closes = "closes in " + approx(f.LingerUntil.Sub(at))
		}
		notes = append(notes, "no subscribers, "+closes)
	}
	return strings.Join(notes, "; ")
}
