package hub

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/clock"
	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
)

// SnapshotFetcher fetches a product's full state; *nellis.Client is one.
type SnapshotFetcher interface {
	Snapshot(ctx context.Context, productID int64, cookies string) (nellis.Snapshot, error)
}

// missingFetcher stands in for a forgotten Deps.Snapshots: every feed is
// degraded with a clear error instead of the process panicking.
type missingFetcher struct{}

func (missingFetcher) Snapshot(context.Context, int64, string) (nellis.Snapshot, error) {
	return nellis.Snapshot{}, errors.New("hub: no snapshot fetcher configured")
}

// Stream is one product's upstream stream; *sseupstream.Subscription is one.
type Stream interface {
	// Close stops the stream and returns once no observer call can follow.
	Close()
	SessionID() string
	LastByte() time.Time
	LastEvent() time.Time
	UpdateConfig(cfg sseupstream.Config)
}

// StreamOpener starts watching productID's stream, reporting to obs.
type StreamOpener func(cfg sseupstream.Config, productID int64, obs sseupstream.Observer) Stream

// OpenSSE is the default StreamOpener: a real sseupstream subscription.
func OpenSSE(cfg sseupstream.Config, productID int64, obs sseupstream.Observer) Stream {
	return sseupstream.Subscribe(cfg, productID, obs)
}

// Hooks are optional callbacks for metrics. Each is called from a feed's
// goroutine (StreamEvent of a ping on a healthy stream: from the stream's)
// and must return quickly; a nil hook is skipped.
type Hooks struct {
	StreamUp          func(productID int64)
	StreamDown        func(productID int64, reason sseupstream.Reason)
	StreamEvent       func(productID int64, kind sseupstream.Kind)
	StreamDecodeError func(productID int64, name string)
	BreakerTransition func(productID int64, t fallback.Transition)
	// PollResult follows every snapshot fetch, after its change (if any)
	// was published.
	PollResult func(productID int64, source Source, took time.Duration, err error)
	// ReconcileChange: a gap-healing snapshot found something the stream
	// had missed.
	ReconcileChange func(productID int64)
	// FallbackActivated: the breaker opened and polling took over.
	FallbackActivated func(productID int64)
	// Published follows every change handed to subscribers.
	Published func(c *Change)
	// Ownership: this node became the owner of a product's upstream in
	// cluster mode (owned, reason "claimed") or stopped being it (reason
	// one of the Handover* constants).
	Ownership func(productID int64, owned bool, reason string)
	// SharedAppend follows every append of an owned feed's change to the
	// cluster's log, with its result (one of the Append* constants).
	SharedAppend func(productID int64, result string)
	// LogPublished: in cluster mode, a reader published a change another
	// node appended to the log, as it arrived (not one read back from the
	// log's past); receivedAt is the owner's receipt of its upstream
	// bytes, from the entry's header and by the owner's clock.
	LogPublished func(receivedAt time.Time)
	// LogRead: in cluster mode, a feed read its product's log (joining,
	// after a gap, or retrying), with whether the read succeeded; a
	// failed read is tried again later (hub/logread.go).
	LogRead func(productID int64, ok bool)
	// Standalone: in cluster mode, the node lost NATS for a full lease
	// and serves its own clients alone (true), or NATS is back (false).
	Standalone func(alone bool)
}

// Deps are what a Hub needs from the outside world.
type Deps struct {
	// Snapshots fetches product snapshots. Required.
	Snapshots SnapshotFetcher
	// Cookies returns the user cookies to fetch productID's snapshot with
	// and an opaque key naming whose they are, which tags the user state
	// the snapshot brings (Change.User); nil or "" cookies fetch
	// anonymously. It may be called from any goroutine.
	Cookies func(productID int64) (owner, cookies string)
	// CookiesFailed: a snapshot fetched with owner's cookies failed where
	// an anonymous one then succeeded, so those cookies are bad (refused
	// by the HTTP client, expired, a redirect to a login page). The feed
	// used the anonymous snapshot; the cookies should not be given again
	// until they change. Called from a feed's goroutine; must not block.
	CookiesFailed func(productID int64, owner string)
	// Monitored reports whether a user monitors productID. Snapshots of a
	// product nobody monitors (wanted only by subscribe sockets, or
	// lingering) wait in the background, behind every monitored product's,
	// and Hub.Prioritize moves a waiting one up once a user monitors it.
	// It may be called from any goroutine. Default: nil, every product is.
	Monitored func(productID int64) bool
	// Watchers reports how many users watch productID; when streams are
	// short, the most watched lots get them first (after the closing ones
	// and those with auto-bids). It may be called from any goroutine.
	// Default: nil, the number of the feed's subscribers.
	Watchers func(productID int64) int
	// OpenStream opens upstream streams. Default: OpenSSE.
	OpenStream StreamOpener
	// Clock drives polls, the breaker and linger. Default: the system clock.
	Clock clock.Clock
	// Rand returns a float in [0, 1) for jitter. Default: math/rand/v2.
	Rand func() float64
	// ServerTime is Nellis's clock at a local instant. An SSE event gives
	// the time left, not the close time; the close time a feed keeps is on
	// Nellis's clock, as snapshots give it, so a skewed local clock never
	// shifts it (a sniper reads it). Default: the local clock.
	ServerTime func(local time.Time) time.Time
	// Logger. Default: zap.NewNop().
	Logger *zap.Logger
	Hooks  Hooks
	// Shared joins the hub to a cluster (hub/shared.go): one node owns
	// each product's upstream and appends its changes to a log the others
	// read. It must be connected before the first Subscribe; until it is,
	// feeds wait and retry. Default: nil, a single node; no cluster code
	// runs.
	Shared cluster.Bus
}
