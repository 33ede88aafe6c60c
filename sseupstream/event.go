package sseupstream

import (
	"fmt"
	"time"

	"github.com/nellis-edge/gateway/nellis"
)

// Kind says what an upstream event means to the gateway.
type Kind int

// The kinds of event a Nellis product stream carries.
const (
	// Connected is the unnamed `connected <session>` greeting at stream start.
	Connected Kind = iota + 1
	// Ping is the unnamed `ping` heartbeat, about once a second.
	Ping
	// Bid is a `ch_product_bids:<id>` event: the price changed.
	Bid
	// Closed is a `ch_product_closed:<id>` event: the lot closed.
	Closed
	// Other is any other event. It is delivered so it can be counted and
	// logged, and is never fatal: Nellis may add event types at any time.
	Other
)

// String returns the kind's lowercase name, for logs and metric labels.
func (k Kind) String() string {
	switch k {
	case Connected:
		return "connected"
	case Ping:
		return "ping"
	case Bid:
		return "bid"
	case Closed:
		return "closed"
	case Other:
		return "other"
	default:
		return fmt.Sprintf("kind(%d)", int(k))
	}
}

// Event is one dispatched upstream event.
type Event struct {
	Kind      Kind
	ProductID int64
	// Name is the SSE event name, "" for unnamed (message) events.
	Name string
	// Data is the raw payload, for debug logging and metrics. It is owned by
	// the receiver.
	Data []byte
	// SessionID is the upstream session of a Connected event.
	SessionID string
	// Patch is the decoded payload of a Bid or Closed event.
	Patch nellis.Patch
	// ReceivedAt is when the line ending the event was read.
	ReceivedAt time.Time
}

// Reason says why a stream went down.
type Reason string

// The reasons a stream goes down. Every one of them is followed by a retry.
const (
	// ReasonEOF: the stream ended, cleanly (err is nil) or by a broken
	// connection (err says how).
	ReasonEOF Reason = "eof"
	// ReasonStall: no byte arrived for StallTimeout.
	ReasonStall Reason = "stall"
	// ReasonStatus: the response was not a 200 text/event-stream.
	ReasonStatus Reason = "status"
	// ReasonDial: no response at all (bad URL, DNS, connect, TLS, header
	// timeout).
	ReasonDial Reason = "dial"
	// ReasonDecode: the body could not be decoded (a corrupt compressed
	// stream), so no event boundary can be trusted.
	ReasonDecode Reason = "decode"
	// ReasonTooLarge: an event exceeded MaxEventSize.
	ReasonTooLarge Reason = "too_large"
)

// Observer receives what happens to a subscription. Its methods are called
// from the subscription's goroutine, one at a time, and should return
// quickly: the stream is not read meanwhile, so Nellis's bytes wait in the
// socket. A slow observer is not taken for a stalled stream, though: the
// watchdog counts no silence while an observer call runs.
type Observer interface {
	// StreamUp: a 200 text/event-stream response arrived.
	StreamUp(productID int64)
	// StreamEvent: an event was dispatched, pings included. SSE comments
	// are not events; they only prove the stream alive to the watchdog.
	StreamEvent(ev Event)
	// StreamDecodeError: an event's payload could not be decoded, or an
	// event was too large. The bad event is dropped; the stream goes on
	// (except after a too-large event, see Config.MaxEventSize).
	StreamDecodeError(productID int64, name string, err error)
	// StreamDown: the stream ended; the next attempt starts in retryIn.
	StreamDown(productID int64, reason Reason, err error, retryIn time.Duration)
}
