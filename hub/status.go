package hub

import "time"

// StatusSourceLog is FeedStatus.Source of a cluster reader: it streams and
// polls nothing, the owner's log brings its changes.
const StatusSourceLog Source = "log"

// FeedStatus is what a feed reports for the status endpoint.
type FeedStatus struct {
	ProductID int64 `json:"product_id"`
	// Source is "sse" while a healthy stream feeds the product, "log" on
	// a cluster reader (the owner's log feeds it), else "poll".
	Source string `json:"source"`
	// Breaker is the stream breaker's state (closed, open, half-open), or
	// "disabled" when use_sse is off.
	Breaker string `json:"breaker"`
	// SessionID is the upstream stream's session, if one is open.
	SessionID string `json:"session_id,omitempty"`
	// Seconds since the stream's last byte and last event; -1 for never.
	SinceLastByte  float64 `json:"since_last_byte_s"`
	SinceLastEvent float64 `json:"since_last_event_s"`
	Subscribers    int     `json:"subscribers"`
	Epoch          string  `json:"epoch"`
	Seq            uint64  `json:"seq"`
	// NextPoll is when the next snapshot poll is due; zero when a fetch is
	// in flight or polling stopped.
	NextPoll time.Time `json:"next_poll,omitzero"`
	// LingerUntil is when the feed closes for want of subscribers; zero
	// while it has some.
	LingerUntil time.Time `json:"linger_until,omitzero"`
	// Degraded says why the feed's state may be stale, "" when it is not.
	Degraded  string `json:"degraded,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// StreamCapped: a stream is wanted but the hub gives it none now: the
	// MaxStreams slots went to lots that need them more.
	StreamCapped bool `json:"stream_capped,omitempty"`
	// Staleness is the age in seconds of what the feed knows: since its
	// last good snapshot or, on a healthy stream, the stream's last byte
	// (after one closed, its last byte); -1 before the first.
	Staleness float64 `json:"staleness_s"`
	// ExpectedStaleness, for a polled lot, is how often in seconds the
	// poll budget lets it be polled now (PollBudget); -1 for never, and 0
	// on a healthy stream.
	ExpectedStaleness float64 `json:"expected_staleness_s,omitempty"`
	// Role, in cluster mode, is "owner" while this node runs the
	// product's upstream and appends its changes to the log, "reader"
	// while it takes them from the log, "standalone" while it runs the
	// upstream alone, cut off from NATS (hub/standalone.go); empty on a
	// single node.
	Role string `json:"role,omitempty"`
	// Owner is the node that owns the product, as far as this node knows;
	// empty on a single node or while no node is known to own it.
	Owner string `json:"owner,omitempty"`
}

func (f *feed) statusAt(now time.Time) FeedStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.status
	s.Subscribers = len(f.subs)
	if f.last != nil {
		s.Seq = f.last.Seq
	}
	s.SinceLastByte, s.SinceLastEvent = -1, -1
	fresh := f.fresh
	if f.streamedUntil.After(fresh) {
		fresh = f.streamedUntil
	}
	if f.stream != nil {
		s.SinceLastByte = secondsSince(now, f.stream.LastByte())
		s.SinceLastEvent = secondsSince(now, f.stream.LastEvent())
		if s.Source == string(SourceSSE) && f.stream.LastByte().After(fresh) {
			fresh = f.stream.LastByte()
		}
	}
	s.Staleness = secondsSince(now, fresh)
	return s
}

// expectedStaleness is what the budget b allows a lot with claim c. A lot
// that entered its closing window less than a closing interval ago still
// waits for its first closing poll (its waiting poll went to the back of
// the closing lots' line): its last poll may be as old as a polled lot's
// interval plus the time since the window opened.
func expectedStaleness(c slotClaim, b PollBudget, now time.Time, window time.Duration) float64 {
	switch {
	case c.over || c.healthy || c.reader:
		return 0
	case !c.closeAt.IsZero() && c.closeAt.Sub(now) <= window:
		in := (window - c.closeAt.Sub(now)).Seconds() // since the window opened
		if b.ClosingInterval < 0 || in >= b.ClosingInterval || b.Interval < 0 {
			return b.ClosingInterval
		}
		return max(b.ClosingInterval, b.Interval+in)
	default:
		return b.Interval
	}
}

func secondsSince(now, t time.Time) float64 {
	if t.IsZero() {
		return -1
	}
	return max(0, now.Sub(t).Seconds())
}
