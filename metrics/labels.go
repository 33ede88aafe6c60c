package metrics

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/sseupstream"
)

// other is the label value for anything outside a label's known set.
const other = "other"

// streamReasons are the values of the reason label on stream failures.
var streamReasons = []string{
	string(sseupstream.ReasonEOF),
	string(sseupstream.ReasonStall),
	string(sseupstream.ReasonStatus),
	string(sseupstream.ReasonDial),
	string(sseupstream.ReasonDecode),
	string(sseupstream.ReasonTooLarge),
	other,
}

// failedToOpen reports whether a stream that went down for r never came up:
// such a failure ends a connection attempt rather than a live stream.
func failedToOpen(r sseupstream.Reason) bool {
	return r == sseupstream.ReasonDial || r == sseupstream.ReasonStatus
}

// eventKinds are the values of the type label on upstream events.
var eventKinds = []sseupstream.Kind{
	sseupstream.Connected,
	sseupstream.Ping,
	sseupstream.Bid,
	sseupstream.Closed,
	sseupstream.Other,
}

func eventKindLabel(k sseupstream.Kind) string {
	for _, known := range eventKinds {
		if k == known {
			return k.String()
		}
	}
	return sseupstream.Other.String()
}

// legacyEventTypes names our event kinds as the predecessor's
// sse_events_received_total{event_type} did, for the /metrics/sse JSON.
var legacyEventTypes = map[sseupstream.Kind]string{
	sseupstream.Connected: "connected",
	sseupstream.Ping:      "ping",
	sseupstream.Bid:       "bid_update",
	sseupstream.Closed:    "auction_closed",
	sseupstream.Other:     "other",
}

// breakerStates are the values of the state, from and to labels.
var breakerStates = []string{
	fallback.BreakerClosed.String(),
	fallback.BreakerOpen.String(),
	fallback.BreakerHalfOpen.String(),
}

func breakerStateLabel(s fallback.BreakerState) string {
	switch s {
	case fallback.BreakerClosed, fallback.BreakerOpen, fallback.BreakerHalfOpen:
		return s.String()
	}
	return other
}

// feedSources are the values of the source label on feeds: where a feed's
// prices come from now.
var feedSources = []string{"sse", "poll", "log"}

// changeSources are the values of the source label on published changes.
var changeSources = []string{
	string(hub.SourceSSE),
	string(hub.SourcePoll),
	string(hub.SourceReconcile),
	other,
}

// pollResults are the values of the result label on snapshot fetches.
var pollResults = []string{"ok", "status_4xx", "status_5xx", "status_other", "timeout", "canceled", "error"}

// pollResultLabel classifies a snapshot fetch's outcome: an HTTP status
// by its class, a deadline, a cancellation (the feed closing, not a fault)
// or any other error.
func pollResultLabel(err error) string {
	var status *nellis.StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &status):
		switch status.Code / 100 {
		case 4:
			return "status_4xx"
		case 5:
			return "status_5xx"
		}
		return "status_other"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

// clientMessageTypes are the values of the type label on messages from
// clients: the protocol's types, "invalid" for a message the relay could
// not decode, and other.
var clientMessageTypes = []string{
	"authenticate", "startMonitoring", "stopMonitoring", "updateConfig",
	"placeBid", "subscribe", "unsubscribe", "getMonitoredAuctions", "ping",
	"resume", "invalid", other,
}

// serverMessageTypes are the values of the type label on messages to
// clients.
var serverMessageTypes = []string{
	"connected", "authenticated", "monitoredAuctions", "auctionState",
	"auctionUpdate", "bidResult", "response", "error", "pong", "ping",
	"heartbeat", "notification", other,
}

// dropReasons are the values of the reason label on dropped frames. The
// relay says "queue full"; labels use underscores.
var dropReasons = []string{"queue_full", "flood", "rate", other}

func dropReasonLabel(reason string) string {
	if reason == "queue full" {
		return "queue_full"
	}
	return reason
}

// closeCodeLabel names a WebSocket close code: the code itself in the
// RFC 6455 range 1000-1015, where each code means something different to an
// operator (1001 going away, 1006 abnormal, 1009 too big), and the class
// elsewhere: 3xxx (registered) and 4xxx (the relay's own, such as slow).
func closeCodeLabel(code int) string {
	switch {
	case code >= 1000 && code <= 1015:
		return strconv.Itoa(code)
	case code >= 3000 && code <= 3999:
		return "3xxx"
	case code >= 4000 && code <= 4999:
		return "4xxx"
	}
	return other
}

// httpStatusLabel is an HTTP status code as a label, or other when it is
// not a valid code: at most 500 values, in practice a handful.
func httpStatusLabel(status int) string {
	if status >= 100 && status <= 599 {
		return strconv.Itoa(status)
	}
	return other
}

// known returns v if it is in set, otherwise other.
func known(v string, set []string) string {
	if slices.Contains(set, v) {
		return v
	}
	return other
}
