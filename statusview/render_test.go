package statusview

import (
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/metrics"
	"github.com/nellis-edge/gateway/wsrelay"
)

// latencies returns two delivery readings a second apart: an old
// incident before, fast writes between them.
func latencies() (before, after metrics.Histogram) {
	m := metrics.New()
	deliver := m.RelayHooks().DeliveryLatency
	for range 10 {
		deliver(3 * time.Second)
	}
	before = m.DeliveryLatency()
	for range 40 {
		deliver(200 * time.Microsecond)
	}
	return before, m.DeliveryLatency()
}

func TestRender(t *testing.T) {
	before, after := latencies()
	relay := &wsrelay.Stats{Connections: 5, Authenticated: 4, Users: 2, MonitoredAuctions: 3, Parked: 3}
	processing := metrics.Recent{Samples: 40, P50: 0.00012, P99: 0.0021}
	prev := NewReport(at.Add(-time.Second), feeds(), relay, Latency{Delivery: before})

	for _, c := range []struct {
		name  string
		frame Frame
		want  string
	}{
		{
			name:  "first frame, three feeds",
			frame: Frame{Address: "localhost:2019", Report: NewReport(at, feeds(), relay, Latency{Delivery: after, Processing: processing})},
			want: `nellis edge · localhost:2019 · 2026-11-27 08:00:00 UTC · started
feeds 3 (poll 2, sse 1) · streams open 1 · stale 1 · subscribers 4
clients 5 connected, 4 authenticated, 3 idle parked · users 2 monitoring 3 auctions
latency delivery p50 194µs p99 4.88s (50 writes since start) · processing p50 120µs p99 2.1ms (last 40 changes)

PRODUCT  SOURCE  BREAKER  LAST EVENT  LAST BYTE  SUBS  SEQ  NEXT POLL  AGE   NOTE
101      sse     closed   0.9s        0.2s       3     17   in 28s     0.2s
102      poll    open     -           -          1     4    in 1.5s    11s
103      poll    open     -           -          0     1    -          40s   STALE; snapshot failing; no subscribers, closes in 12s
`,
		},
		{
			name:  "next frame: delivery between the two",
			frame: Frame{Address: "localhost:2019", Report: NewReport(at, feeds()[:1], relay, Latency{Delivery: after, Processing: processing}), Prev: &prev},
			want: `nellis edge · localhost:2019 · 2026-11-27 08:00:00 UTC · started
feeds 1 (sse 1) · streams open 1 · stale 0 · subscribers 3
clients 5 connected, 4 authenticated, 3 idle parked · users 2 monitoring 3 auctions
latency delivery p50 175µs p99 249µs (40 writes in the last 1.0s) · processing p50 120µs p99 2.1ms (last 40 changes)

PRODUCT  SOURCE  BREAKER  LAST EVENT  LAST BYTE  SUBS  SEQ  NEXT POLL  AGE   NOTE
101      sse     closed   0.9s        0.2s       3     17   in 28s     0.2s
`,
		},
		{
			name:  "poll budget short",
			frame: Frame{Address: "a", Report: withBudget(NewReport(at, feeds()[1:2], relay, Latency{}), hub.PollBudget{Short: true, Rate: 10, Needed: 60, PolledLots: 120, ClosingPolledLots: 0, Interval: 12, ClosingInterval: 1})},
			want: `nellis edge · a · 2026-11-27 08:00:00 UTC · started
feeds 1 (poll 1) · streams open 0 · stale 0 · subscribers 1
clients 5 connected, 4 authenticated, 3 idle parked · users 2 monitoring 3 auctions
latency delivery no writes since start · processing no changes yet
polls 120 lots (0 closing) at 10/s, needed 60/s · BUDGET SHORT: a polled lot is refreshed every 12s, a closing one every 1.0s (raise poll_rate or max_streams)

PRODUCT  SOURCE  BREAKER  LAST EVENT  LAST BYTE  SUBS  SEQ  NEXT POLL  AGE  NOTE
102      poll    open     -           -          1     4    in 1.5s    11s  polled every 12s
`,
		},
		{
			name:  "lots not known yet",
			frame: Frame{Address: "a", Report: withBudget(NewReport(at, nil, relay, Latency{}), hub.PollBudget{Rate: 10, Needed: 0.5, PolledLots: 1, Interval: 2, ClosingInterval: 1, UnknownLots: 4000, FirstSnapshotsIn: 400})},
			want: `nellis edge · a · 2026-11-27 08:00:00 UTC · started
feeds 0 (none) · streams open 0 · stale 0 · subscribers 0
clients 5 connected, 4 authenticated, 3 idle parked · users 2 monitoring 3 auctions
latency delivery no writes since start · processing no changes yet
polls 1 lots (0 closing) at 10/s, needed 0.5/s · 4000 lots not known yet (first snapshots take 6m40s) · covered

no feeds: no product is being watched
`,
		},
		{
			name:  "poll budget covered",
			frame: Frame{Address: "a", Report: withBudget(NewReport(at, nil, relay, Latency{}), hub.PollBudget{Rate: 10, Needed: 0.5, PolledLots: 1, Interval: 2, ClosingInterval: 1})},
			want: `nellis edge · a · 2026-11-27 08:00:00 UTC · started
feeds 0 (none) · streams open 0 · stale 0 · subscribers 0
clients 5 connected, 4 authenticated, 3 idle parked · users 2 monitoring 3 auctions
latency delivery no writes since start · processing no changes yet
polls 1 lots (0 closing) at 10/s, needed 0.5/s · covered

no feeds: no product is being watched
`,
		},
		{
			name:  "starting, nothing watched",
			frame: Frame{Address: "unix//run/caddy.sock", Report: NewReport(at, nil, nil, Latency{Delivery: metrics.Histogram{}})},
			want: `nellis edge · unix//run/caddy.sock · 2026-11-27 08:00:00 UTC · starting
feeds 0 (none) · streams open 0 · stale 0 · subscribers 0
clients 0 connected, 0 authenticated, 0 idle parked · users 0 monitoring 0 auctions
latency delivery no writes since start · processing no changes yet

no feeds: no product is being watched
`,
		},
		{
			name:  "quiet second",
			frame: Frame{Address: "a", Report: NewReport(at, nil, relay, Latency{Delivery: after}), Prev: &Report{At: at.Add(-2 * time.Second), Latency: Latency{Delivery: after}}},
			want: `nellis edge · a · 2026-11-27 08:00:00 UTC · started
feeds 0 (none) · streams open 0 · stale 0 · subscribers 0
clients 5 connected, 4 authenticated, 3 idle parked · users 2 monitoring 3 auctions
latency delivery no writes in the last 2.0s · processing no changes yet

no feeds: no product is being watched
`,
		},
	} {
		if got := Render(c.frame); got != c.want {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", c.name, got, c.want)
		}
	}
}

func withBudget(r Report, b hub.PollBudget) Report {
	r.PollBudget = &b
	return r
}

func TestApprox(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                "0.0s",
		400 * time.Millisecond:           "0.4s",
		9940 * time.Millisecond:          "9.9s",
		12 * time.Second:                 "12s",
		3*time.Minute + 4*time.Second:    "3m04s",
		2*time.Hour + 5*time.Minute + 59: "2h05m",
	} {
		if got := approx(d); got != want {
			t.Errorf("approx(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestRenderHasNoControlCodes(t *testing.T) {
	out := Render(Frame{Address: "a", Report: NewReport(at, feeds(), nil, Latency{})})
	if strings.ContainsRune(out, '\x1b') {
		t.Errorf("frame carries an escape sequence:\n%q", out)
	}
}

// In cluster mode each row says whether this node owns the lot or reads
// it from another's log, and whose.
func TestRenderNamesClusterOwners(t *testing.T) {
	fs := feeds()[:2]
	fs[0].Role, fs[0].Owner = "owner", "gw-a"
	fs[1].Role, fs[1].Owner = "reader", "gw-b"
	three := append(fs, hub.FeedStatus{ProductID: 104, Source: "poll", Breaker: "closed", Role: "reader", SinceLastByte: -1, SinceLastEvent: -1, Staleness: -1})
	out := Render(Frame{Address: "localhost:2019", Report: NewReport(at, three, nil, Latency{})})
	for _, want := range []string{
		"owned here (cluster)",
		"read from gw-b's log (cluster)",
		"read from the log, no owner known (cluster)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}
