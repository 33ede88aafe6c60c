package sseupstream

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/clock"
)

// Subscription keeps one product's SSE stream open until Close: it
// reconnects after every end, failure or stall, for as long as it lives.
type Subscription struct {
	productID int64
	obs       Observer
	clock     clock.Clock // fixed at Subscribe: timers in flight belong to it
	cancel    context.CancelFunc
	done      chan struct{} // closed when the subscription's goroutine has ended

	mu        sync.Mutex
	cfg       Config
	sessionID string

	lastByte  atomic.Int64 // UnixNano of the last byte read; 0 before any
	lastEvent atomic.Int64 // UnixNano of the last event dispatched; 0 before any
	lastLine  atomic.Int64 // UnixNano of the last read that ended a line
	up        atomic.Bool  // a 200 event stream is open
	// The stream is not read while the observer runs: a slow observer is
	// backpressure, not a quiet server. observing is set during an
	// observer call; the watchdog, finding the stream's silence too long
	// while it is set, sets waited and looks again later; the call, on
	// its return, then stamps returned, from which silence counts anew
	// (the bytes that arrived meanwhile are read next).
	observing atomic.Bool
	waited    atomic.Bool
	returned  atomic.Int64 // UnixNano
}

// Subscribe starts watching productID's stream and returns at once. cfg
// gets WithDefaults; a cfg that fails Validate is not refused (there is no
// error to return) but every attempt then fails and is reported through
// obs.StreamDown, so validate first. obs may be nil.
func Subscribe(cfg Config, productID int64, obs Observer) *Subscription {
	cfg = cfg.WithDefaults()
	if obs == nil {
		obs = nopObserver{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscription{
		productID: productID,
		obs:       obs,
		clock:     cfg.Clock,
		cancel:    cancel,
		done:      make(chan struct{}),
		cfg:       cfg,
	}
	go s.run(ctx)
	return s
}

// Close stops the subscription. It returns once the connection is closed
// and every goroutine of the subscription has ended; no observer call
// happens after it returns. It is safe to call more than once and from
// several goroutines, but not from an Observer method (it would wait for
// itself).
func (s *Subscription) Close() {
	s.cancel()
	<-s.done
}

// SessionID is the session id of the last `connected` message. It survives
// reconnects until a new one arrives; "" before the first.
func (s *Subscription) SessionID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionID
}

// LastByte is when the stream last delivered a byte of any kind, or the
// zero time if it never has.
func (s *Subscription) LastByte() time.Time { return unixNanoTime(s.lastByte.Load()) }

// LastEvent is when the stream last dispatched an event (pings included),
// or the zero time if it never has.
func (s *Subscription) LastEvent() time.Time { return unixNanoTime(s.lastEvent.Load()) }

// Healthy reports whether a stream is open and has delivered a byte within
// the stall timeout.
func (s *Subscription) Healthy() bool {
	if !s.up.Load() {
		return false
	}
	byteAt, _, _ := s.heardAt()
	return s.clock.Now().Sub(byteAt) < time.Duration(s.config().StallTimeout)
}

// heardAt is when the stream last proved itself alive with a byte and with
// a whole line, each counted at the earliest from the return of an
// observer call the watchdog waited for (the stream was not read before
// it), and whether an observer call runs now, when no silence counts.
func (s *Subscription) heardAt() (byteAt, lineAt time.Time, observing bool) {
	returned := s.returned.Load()
	return unixNanoTime(max(s.lastByte.Load(), returned)), unixNanoTime(max(s.lastLine.Load(), returned)), s.observing.Load()
}

// UpdateConfig replaces the subscription's settings, for config reloads.
// The stall timeout applies from the watchdog's next check; backoff and
// healthy-after when the current attempt ends; event size, endpoint and
// HTTP client from the next attempt. The open connection is kept. A nil HTTPClient or Logger keeps
// the current one (a fresh default client would orphan the old one's
// connections), the clock is never changed, and a config that fails
// Validate is logged and ignored.
func (s *Subscription) UpdateConfig(cfg Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = s.cfg.HTTPClient
	}
	if cfg.Logger == nil {
		cfg.Logger = s.cfg.Logger
	}
	cfg.Clock = s.clock
	cfg.randInt64N = s.cfg.randInt64N
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		s.cfg.Logger.Warn("ignoring invalid sse config update",
			zap.Int64("product_id", s.productID), zap.Error(err))
		return
	}
	s.cfg = cfg
}

func (s *Subscription) config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *Subscription) setSessionID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessionID = id
}

// run is the subscription's goroutine: connect, read until the stream
// ends, wait out the backoff, again, until the context ends. It never gives
// up on its own: a lot being watched must not go silent because Nellis was
// down for a while.
func (s *Subscription) run(ctx context.Context) {
	defer close(s.done)
	defer func() {
		if r := recover(); r != nil {
			s.config().Logger.Error("sse subscription stopped by panic",
				zap.Int64("product_id", s.productID), zap.Any("panic", r), zap.StackSkip("stack", 1))
		}
	}()
	failures := 0 // consecutive attempts that did not stay up HealthyAfter
	for {
		out := s.attempt(ctx, s.config(), failures)
		if ctx.Err() != nil {
			return
		}
		cfg := s.config()
		if out.upFor >= time.Duration(cfg.HealthyAfter) {
			failures = 0
		}
		retryIn := backoffDelay(failures, time.Duration(cfg.BackoffBase), time.Duration(cfg.BackoffMax), cfg.randInt64N)
		failures++
		s.logDown(cfg.Logger, out, failures, retryIn)
		s.notify(func() { s.obs.StreamDown(s.productID, out.reason, out.err, retryIn) })
		if !s.sleep(ctx, retryIn) {
			return
		}
	}
}

// logDown logs the first failure of a run of failures as a warning and the
// retries after it at debug level, so an outage of hours is one warning,
// not one line per retry.
func (s *Subscription) logDown(logger *zap.Logger, out outcome, failures int, retryIn time.Duration) {
	level := zap.DebugLevel
	if failures == 1 {
		level = zap.WarnLevel
	}
	if ce := logger.Check(level, "sse stream down"); ce != nil {
		ce.Write(zap.Int64("product_id", s.productID), zap.String("reason", string(out.reason)),
			zap.Error(out.err), zap.Duration("up_for", out.upFor),
			zap.Int("failures", failures), zap.Duration("retry_in", retryIn))
	}
}

// sleep waits d on the subscription's clock; false means ctx ended first.
func (s *Subscription) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := s.clock.NewTimer(s.clock.Now().Add(d))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// notify calls the observer, containing its panics: a bug in one observer
// call must not end the subscription of a lot someone is bidding on.
func (s *Subscription) notify(call func()) {
	s.observing.Store(true)
	defer func() {
		if s.waited.Swap(false) {
			s.returned.Store(s.clock.Now().UnixNano())
		}
		s.observing.Store(false)
		if r := recover(); r != nil {
			s.config().Logger.Error("sse observer panicked",
				zap.Int64("product_id", s.productID), zap.Any("panic", r), zap.StackSkip("stack", 1))
		}
	}()
	call()
}

func unixNanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

type nopObserver struct{}

func (nopObserver) StreamUp(int64)                                 {}
func (nopObserver) StreamEvent(Event)                              {}
func (nopObserver) StreamDecodeError(int64, string, error)         {}
func (nopObserver) StreamDown(int64, Reason, error, time.Duration) {}
