// Package sseupstream keeps one Nellis server-sent-events stream open per
// product, for as long as the product is watched, and turns its events into
// Observer calls. It knows nothing of Caddy, the hub or the gateway's
// clients.
//
// A Subscription owns one goroutine, plus a stall watchdog per open
// connection. It connects to Endpoint + "/live-products?productId=<id>",
// accepts only a 200 text/event-stream, reads events until the stream ends,
// stalls or breaks, then waits a full-jitter exponential backoff and
// connects again, forever, until Close.
//
// # Use of github.com/r3labs/sse/v2
//
// The design names r3labs/sse v2.10.0 as the SSE client. Its Client cannot be
// made safe from outside, so this package uses only its EventStreamReader,
// the part that splits a byte stream into event blocks under a buffer limit,
// on a response body this package requests, watches and closes itself. The
// Client's faults, and what neutralises each:
//
//   - It never reconnects after a clean end of stream: its read loop turns
//     io.EOF into success, so the retry loop returns. Here every end of a
//     stream, clean or not, is followed by a new attempt.
//   - Its default backoff (cenkalti/backoff v1 ExponentialBackOff) gives up
//     15 minutes after the first connect, because MaxElapsedTime counts from
//     the start of the retry loop and is never reset by a healthy stream:
//     the first failure after 15 minutes of streaming is final. Here the
//     backoff has no end, and a stream that stayed up HealthyAfter resets it.
//   - Cancelling the context passed to SubscribeWithContext only fails the
//     request; the retry loop sleeps on its own context and tries again,
//     failing at once, until the 15 minutes are up. Here Close cancels the
//     one context that every request, read, watchdog and backoff sleep
//     waits on, and waits for the goroutine to end.
//   - Unsubscribe leaks: the read-loop goroutine blocks forever sending its
//     next event or error to a loop that has returned. Here the read happens
//     on the subscription's own goroutine; the only other goroutine, the
//     watchdog, is joined before a connection attempt returns.
//   - Its scanner buffer defaults to 64 KiB, so a larger event ends the
//     stream with bufio.ErrTooLong. Here the reader's limit is MaxEventSize
//     (default 1 MiB) plus the delimiter; a larger event is reported as a
//     decode error and the connection is reopened (ReasonTooLarge), since
//     the scanner cannot skip to the next event.
//   - Comment-only heartbeats never reach its handler, and it has no stall
//     detection at all. Here the raw body is wrapped in a reader that stamps
//     the time of every byte before parsing, so pings, comments and partial
//     events all keep the watchdog quiet; comments are not events and are
//     not delivered to the Observer.
//
// Its parser (a private method of the Client) is replaced too: it would
// deliver an unterminated fragment at the end of a body as an event, it
// does not skip a UTF-8 byte order mark (losing the first event), and it
// glues comment lines into the next event. This package drops comment lines
// before the library's reader sees them, skips a leading BOM, accepts CR,
// LF and CRLF line ends, and discards a fragment cut off by the end of the
// body.
//
// # Events
//
// Unnamed `connected <session>` messages become Connected events (the
// session id is kept across reconnects until a new one arrives), unnamed
// `ping` becomes Ping, `ch_product_bids:<id>` becomes Bid and
// `ch_product_closed:<id>` Closed, each with its payload decoded by package
// nellis. A payload that does not decode, or that names another product, is
// reported through StreamDecodeError and skipped; the stream goes on. Any
// other event is delivered as Other.
package sseupstream
