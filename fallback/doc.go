// Package fallback decides when a product's live stream cannot be trusted and
// how often its snapshot is polled instead: a per-product circuit breaker, a
// poll schedule by time left, and one limiter that keeps every poll of the
// process polite toward Nellis. Everything here runs on a clock.Clock, so
// tests run on fake time.
package fallback
