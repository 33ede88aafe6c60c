package hub

import (
	"errors"
	"fmt"
	"time"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/settings"
	"github.com/nellis-edge/gateway/sseupstream"
)

// Config tunes the hub and every feed in it. UpdateConfig applies a new one
// to running feeds in place. A field with a JSON name is a setting of the
// Caddy app's `nellis` block by that name; the Caddy app embeds the nested
// configs beside it, so their settings sit in the same block.
type Config struct {
	// UseSSE opens one upstream stream per product; off, every product is
	// polled only. The zero value is off: the caller chooses (the Caddy
	// app's `use_sse` defaults it to on).
	UseSSE bool `json:"-"`
	// SSEPercent is the share of lots, in percent, followed by SSE while
	// UseSSE is on; the others are polled only. Which lots is decided by a
	// stable hash of the product id (InSSEShare), so a lot keeps its side
	// across reloads and restarts. The Caddy app's `use_sse N%` sets it.
	// Default: 100.
	SSEPercent float64 `json:"-"`
	// MaxStreams caps the upstream streams open in the process; products
	// beyond it are polled only. When more lots want one, streams go to
	// the lots in or near their closing window first (soonest first), then
	// to those someone auto-bids on, then to the most watched; a lot
	// entering its closing window takes the stream of the streamed lot
	// furthest from closing within a second. Lowering it closes no open
	// stream. Default: 1000.
	MaxStreams int `json:"max_streams,omitempty"`
	// StreamClosingMargin is how long before its closing window
	// (closing_window) a lot already ranks as closing for a stream, so
	// that it holds one when the window opens. Default: 60s.
	StreamClosingMargin settings.Duration `json:"stream_closing_margin,omitempty"`
	// Linger is how long a feed outlives its last subscriber, so that a
	// client reconnecting or a page reloading finds it warm. Default: 30s.
	Linger settings.Duration `json:"linger,omitempty"`
	// History is how many recent changes a feed keeps for clients that
	// resume (Since). A new value applies to feeds created after it.
	// Default: 64.
	History int `json:"history,omitempty"`
	// SnapshotTimeout bounds one snapshot fetch. Default: 10s.
	SnapshotTimeout time.Duration `json:"-"`

	SSE     sseupstream.Config      `json:"-"`
	Breaker fallback.BreakerConfig  `json:"-"`
	Poll    fallback.ScheduleConfig `json:"-"`
	Limiter fallback.LimiterConfig  `json:"-"`
}

// WithDefaults returns c with its zero fields set to the defaults. It leaves
// SSE alone: sseupstream.Config.WithDefaults builds an HTTP client per call,
// so the hub calls it once itself.
func (c Config) WithDefaults() Config {
	if c.Linger == 0 {
		c.Linger = settings.Duration(30 * time.Second)
	}
	if c.History == 0 {
		c.History = 64
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = 1000
	}
	if c.SSEPercent == 0 {
		c.SSEPercent = 100
	}
	if c.StreamClosingMargin == 0 {
		c.StreamClosingMargin = settings.Duration(60 * time.Second)
	}
	if c.SnapshotTimeout == 0 {
		c.SnapshotTimeout = 10 * time.Second
	}
	c.Breaker = c.Breaker.WithDefaults()
	c.Poll = c.Poll.WithDefaults()
	c.Limiter = c.Limiter.WithDefaults()
	return c
}

// Validate reports every setting that cannot work; call it on the result of
// WithDefaults. The SSE settings are checked only when UseSSE is on.
func (c Config) Validate() error {
	var errs []error
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("linger must not be negative, got %v", c.Linger))
	}
	if c.History < 1 {
		errs = append(errs, fmt.Errorf("history (the ring size) must be at least 1, got %d", c.History))
	}
	if c.MaxStreams < 0 {
		errs = append(errs, fmt.Errorf("max streams must not be negative, got %d", c.MaxStreams))
	}
	if c.SSEPercent <= 0 || c.SSEPercent > 100 {
		errs = append(errs, fmt.Errorf("sse percent must be in (0, 100], got %v", c.SSEPercent))
	}
	if c.StreamClosingMargin < 0 {
		errs = append(errs, fmt.Errorf("stream closing margin must not be negative, got %v", c.StreamClosingMargin))
	}
	if c.SnapshotTimeout <= 0 {
		errs = append(errs, fmt.Errorf("snapshot timeout must be positive, got %v", c.SnapshotTimeout))
	}
	if c.UseSSE {
		if err := c.SSE.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("sse: %w", err))
		}
	}
	for _, err := range []error{c.Breaker.Validate(), c.Poll.Validate(), c.Limiter.Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
