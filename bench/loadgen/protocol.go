// Package loadgen is the benchmark's client side: many WebSocket clients
// speaking the extension's protocol to the gateway, measuring each price
// change against the simulator's schedule. cmd/nellis-loadgen runs it in a
// process of its own; the bench driver talks to that process with one JSON
// line each way on stdin and stdout:
//
//	loadgen → driver  Ready   once every client is connected (and monitoring)
//	driver → loadgen  Plan    the schedule and the measurement window
//	loadgen → driver  Result  after the window and its drain have passed
//
// The schedule is sent only once the clients are ready, so connection setup
// never eats into the measured window.
package loadgen

import (
	"time"

	"github.com/nellis-edge/gateway/nellissim"
)

// Ready reports that the clients are set up.
type Ready struct {
	Connected int     `json:"connected"`
	Failed    int     `json:"failed"`
	FirstErr  string  `json:"firstErr,omitempty"`
	SetupSecs float64 `json:"setupSecs"`
}

// Plan is what the driver decided once the clients were ready.
type Plan struct {
	// Schedule is the simulator's; zero for idle clients.
	Schedule nellissim.Schedule `json:"schedule"`
	// MeasureFrom and MeasureUntil bound the scheduled times of the events
	// measured; events before are warm-up, after are not expected.
	MeasureFrom  time.Time `json:"measureFrom"`
	MeasureUntil time.Time `json:"measureUntil"`
	// DrainUntil is when the clients stop waiting for late deliveries and
	// the result is computed. Idle clients hold their sockets until then.
	DrainUntil time.Time `json:"drainUntil"`
	// Mark, when set, is the due time of the first event after a fault:
	// Result.AfterMark says how long after it the changes resumed.
	Mark time.Time `json:"mark,omitzero"`
	// Closes, when set, is each product's close time: its events due at or
	// after it are not expected (the simulator refuses them), and Result
	// splits the deliveries by group (see Groups). LastWindow is the span
	// before a close that makes the "closing" group.
	Closes     map[int64]time.Time `json:"closes,omitempty"`
	LastWindow time.Duration       `json:"lastWindow,omitempty"`
	// Remote, for a cluster, lists per endpoint (as given in -url) the
	// products another node owns: a client there gets their changes
	// through the cluster's log. Result.Groups then also holds "cross",
	// those changes, and "local", the changes of the products its own
	// node owns.
	Remote map[string][]int64 `json:"remote,omitempty"`
	// Reconnect, when set, has a client whose socket ends before
	// DrainUntil dial another endpoint of -url (round-robin over the
	// others), sign in and resume from the last epoch and seq it saw of
	// each product, as the extension does (docs/protocol.md, Resume).
	// Result.Resume says how that went; Result.AfterMark then holds the
	// clients that never lost their socket, Resume.AfterMark the others.
	Reconnect bool `json:"reconnect,omitempty"`
	// History is the gateway's ring per product (its `history`): a resume
	// that missed at most this many changes must come back recovered.
	History int `json:"history,omitempty"`
}

// Result is what the clients measured.
type Result struct {
	Clients int `json:"clients"`
	// Open is how many sockets were still open at DrainUntil.
	Open int `json:"open"`
	// FirstClose is the first unexpected close, for the report.
	FirstClose string `json:"firstClose,omitempty"`

	Expected   int64 `json:"expected"`   // scheduled deliveries in the window, all clients
	Delivered  int64 `json:"delivered"`  // distinct ones received
	Drops      int64 `json:"drops"`      // expected − delivered
	Duplicates int64 `json:"duplicates"` // a change received again or out of order, or a price below one already seen
	// Restates are newer changes at the price already seen (a snapshot
	// moved the price before the stream's event for the same bid, which
	// then brought its bidder): not deliveries of the schedule, not faults.
	Restates int64 `json:"restates"`

	// Latency is from each change's scheduled emit to its receipt.
	Latency Summary `json:"latency"`

	// DeliveriesPerSec is Delivered over the window's length.
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
	// Sources counts received changes in the window by the gateway's source.
	Sources map[string]int64 `json:"sources"`

	// AfterMark holds one sample per client: the delay from Mark until
	// every product had delivered it a change scheduled at or after Mark
	// (the slowest product's first such change). AfterMarkPoll is the same
	// for changes whose source is "poll". The worst client is what matters.
	AfterMark     Summary `json:"afterMark"`
	AfterMarkPoll Summary `json:"afterMarkPoll"`
	// MarkMissing counts clients with a product that delivered no change
	// after Mark at all.
	MarkMissing int `json:"markMissing"`

	// StateSetupSecs is from the first client's dial to the moment the
	// last client had received its first auctionState of every product it
	// monitors (the state each startMonitoring is answered with): the
	// setup a user waits for, however the gateway orders its pushes.
	// StatesMissing counts client-product pairs with no auctionState by
	// DrainUntil. Both are zero for idle clients.
	StateSetupSecs float64 `json:"stateSetupSecs"`
	StatesMissing  int     `json:"statesMissing"`
	// Groups, with Plan.Closes, splits the window's changes: "stream"
	// holds the (client, product) pairs whose every change came by SSE
	// (on a stream for the whole window), "polled" the others (a change
	// by poll or reconcile, or none at all: polled at some time);
	// "closing" every change due in its lot's last Plan.LastWindow,
	// whatever its source; "sse" every change that came by SSE,
	// whichever its pair's group (its Expected is what was delivered).
	Groups map[string]Group `json:"groups,omitempty"`

	// Regressions counts changes, duplicates among them, whose price was
	// below one already seen although they came later in the feed (a
	// newer seq or another epoch): a price that went back.
	Regressions int64 `json:"regressions"`
	// Resume, with Plan.Reconnect, is what the clients that lost their
	// socket measured of getting back.
	Resume *ResumeStats `json:"resume,omitempty"`

	// CPUSecs is this process's user+system CPU during the window.
	CPUSecs    float64 `json:"cpuSecs"`
	WindowSecs float64 `json:"windowSecs"`
}

// Group is what the clients measured of one group of changes.
type Group struct {
	Expected  int64   `json:"expected"`
	Delivered int64   `json:"delivered"`
	Drops     int64   `json:"drops"`
	Latency   Summary `json:"latency"`
	// Covered counts the expected changes the client had by DrainUntil,
	// itself or a newer price of the lot: what a polled lot promises (its
	// latest state within its staleness budget), where a change superseded
	// between two polls is never sent on its own. Staleness runs from each
	// expected change's due time until the client had it or a newer price,
	// or until DrainUntil for a change never covered (a lower bound).
	Covered   int64   `json:"covered"`
	Staleness Summary `json:"staleness"`
	// Pairs is how many (client, product) pairs the group holds.
	Pairs int `json:"pairs"`
}

// ResumeStats is what the clients measured of reconnecting and resuming
// (Plan.Reconnect).
type ResumeStats struct {
	// Clients lost their socket and reconnected; Failed lost it and
	// found no endpoint that took them back before DrainUntil. Retries
	// counts failed attempts to reconnect, FirstErr says why the first
	// failed.
	Clients  int    `json:"clients"`
	Failed   int    `json:"failed"`
	Retries  int    `json:"retries"`
	FirstErr string `json:"firstErr,omitempty"`
	// Products counts the products resumed (one per product in each
	// resume sent); Recovered those answered recovered: true, the others
	// got the current state instead. UnrecoveredWithin counts those that
	// missed at most Plan.History changes of the same epoch, which the
	// gateway should have replayed; NewEpoch those whose feed had another
	// epoch.
	Products          int `json:"products"`
	Recovered         int `json:"recovered"`
	UnrecoveredWithin int `json:"unrecoveredWithin"`
	NewEpoch          int `json:"newEpoch"`
	// Replayed counts the changes the recovered resumes announced;
	// Gaps those a client did not receive by the reply. Skipped counts
	// changes between a replay's last and the next live change that never
	// came: live changes, which a busy socket's queue may supersede as it
	// does for any client (a drop), not part of what the resume owed.
	// Broken counts recovered resumes whose replay did not arrive as one
	// run of exactly the missed changes in order (one missing, or one
	// twice): a replay is queued whole, so nothing may come between.
	Replayed int64 `json:"replayed"`
	Gaps     int64 `json:"gaps"`
	Skipped  int64 `json:"skipped"`
	Broken   int   `json:"broken"`
	// Raced counts changes a resuming client got again: a live push of a
	// change the replay also holds, which the protocol allows (the
	// client keeps the highest seq and ignores the rest), so neither a
	// delivery nor a duplicate.
	Raced int64 `json:"raced"`
	// Drops is the reconnected clients' share of Result.Drops (every
	// client expects the same changes: no Watch, no Closes).
	Drops int64 `json:"drops"`
	// Took is, per resume, from the socket's end to the resume's reply.
	Took Summary `json:"took"`
	// AfterMark and MarkMissing are Result's for the reconnected clients.
	AfterMark   Summary `json:"afterMark"`
	MarkMissing int     `json:"markMissing"`
}
