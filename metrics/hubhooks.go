package metrics

import (
	"time"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/sseupstream"
)

// HubHooks returns the hub callbacks that feed these metrics. The product
// id each hook receives is never used as a label.
func (m *Metrics) HubHooks() hub.Hooks {
	return hub.Hooks{
		StreamUp:          m.streamUp,
		StreamDown:        m.streamDown,
		StreamEvent:       m.streamEvent,
		StreamDecodeError: m.streamDecodeError,
		BreakerTransition: m.breakerTransition,
		PollResult:        m.pollResult,
		ReconcileChange:   m.reconcileChange,
		FallbackActivated: m.fallbackActivated,
		Published:         m.publishedChange,
		Ownership:         m.ownership,
		SharedAppend:      m.sharedAppend,
		LogPublished:      m.logPublished,
		LogRead:           m.logRead,
		Standalone:        m.standalone,
	}
}

func (m *Metrics) streamUp(int64) {
	m.streamAttempts.Inc()
	m.streamSuccesses.Inc()
}

func (m *Metrics) streamDown(_ int64, reason sseupstream.Reason) {
	if failedToOpen(reason) {
		m.streamAttempts.Inc()
	}
	m.streamFailures.inc(string(reason))
	// Every stream that goes down is retried (sseupstream.Reason).
	m.reconnects.Inc()
}

func (m *Metrics) streamEvent(_ int64, kind sseupstream.Kind) {
	m.streamEvents.inc(eventKindLabel(kind))
}

// streamDecodeError ignores the event name: it carries the product id.
func (m *Metrics) streamDecodeError(int64, string) {
	m.decodeErrors.Inc()
}

func (m *Metrics) breakerTransition(_ int64, t fallback.Transition) {
	m.breakerTransitions.WithLabelValues(breakerStateLabel(t.From), breakerStateLabel(t.To)).Inc()
}

func (m *Metrics) pollResult(_ int64, _ hub.Source, took time.Duration, err error) {
	m.polls.WithLabelValues(pollResultLabel(err)).Inc()
	m.pollDuration.Observe(took.Seconds())
}

func (m *Metrics) reconcileChange(int64) {
	m.reconcileChanges.Inc()
}

func (m *Metrics) fallbackActivated(int64) {
	m.fallbackActivations.Inc()
}

// publishedChange counts c and times its processing, from the arrival of
// its upstream bytes to now. A change without a receive time is counted
// but not timed; a clock step backwards counts as zero.
func (m *Metrics) publishedChange(c *hub.Change) {
	if c == nil {
		return
	}
	m.published.inc(string(c.Source))
	if c.ReceivedAt.IsZero() {
		return
	}
	d := max(m.now().Sub(c.ReceivedAt), 0)
	m.processingTime.Observe(d.Seconds())
	m.processing.observe(milliseconds(d))
}

func milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}
