package fallback

import (
	"errors"
	"fmt"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

// ScheduleConfig sets the poll intervals. Zero fields take the defaults. A
// field with a JSON name is a setting of the Caddy app's `nellis` block by
// that name.
type ScheduleConfig struct {
	// Poll interval while a product has no healthy stream (down or
	// disabled). Default: 2s.
	Fallback settings.Duration `json:"poll_interval,omitempty"`
	// Poll interval without a healthy stream in the closing window.
	// Default: 1s.
	FallbackClosing settings.Duration `json:"poll_interval_closing,omitempty"`
	// Safety-net poll interval while the stream is healthy. Default: 30s.
	SafetyNet settings.Duration `json:"safety_poll_interval,omitempty"`
	// Hedging poll interval with a healthy stream in the closing window,
	// where a missed event costs most. Default: 2s.
	Hedge settings.Duration `json:"hedge_poll_interval,omitempty"`
	// The closing window: time left under which polls speed up.
	// Default: 60s.
	ClosingWindow settings.Duration `json:"closing_window,omitempty"`
	// Fraction of an interval added or taken at random so that products do
	// not poll in lockstep. Default: 0.1.
	Jitter float64 `json:"-"`
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c ScheduleConfig) WithDefaults() ScheduleConfig {
	if c.Fallback == 0 {
		c.Fallback = settings.Duration(2 * time.Second)
	}
	if c.FallbackClosing == 0 {
		c.FallbackClosing = settings.Duration(time.Second)
	}
	if c.SafetyNet == 0 {
		c.SafetyNet = settings.Duration(30 * time.Second)
	}
	if c.Hedge == 0 {
		c.Hedge = settings.Duration(2 * time.Second)
	}
	if c.ClosingWindow == 0 {
		c.ClosingWindow = settings.Duration(60 * time.Second)
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	return c
}

// Validate reports every nonsensical setting.
func (c ScheduleConfig) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"fallback", time.Duration(c.Fallback)}, {"fallback_closing", time.Duration(c.FallbackClosing)}, {"safety_net", time.Duration(c.SafetyNet)}, {"hedge", time.Duration(c.Hedge)}, {"closing_window", time.Duration(c.ClosingWindow)}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("poll %s must be positive, got %v", d.name, d.v))
		}
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		errs = append(errs, errors.New("poll jitter must be in [0, 1)"))
	}
	return errors.Join(errs...)
}

// Situation is what the poll interval depends on.
type Situation struct {
	// StreamHealthy: a live stream is delivering; polls are a safety net.
	StreamHealthy bool
	// Over: the lot is confirmed closed; polling stops.
	Over bool
	// TimeLeft before the close; meaningful only when CloseKnown.
	TimeLeft   time.Duration
	CloseKnown bool
}

// Closing reports whether the situation is in the closing window of c.
func (s Situation) Closing(c ScheduleConfig) bool {
	return s.CloseKnown && s.TimeLeft <= time.Duration(c.WithDefaults().ClosingWindow)
}

// Schedule picks poll intervals. Rand returns a float in [0, 1) for the
// jitter; nil means no jitter.
type Schedule struct {
	Config ScheduleConfig
	Rand   func() float64
}

// Next returns the wait before the next poll, or false when polling should
// stop because the lot is over.
func (s Schedule) Next(sit Situation) (time.Duration, bool) {
	if sit.Over {
		return 0, false
	}
	c := s.Config.WithDefaults()
	closing := sit.Closing(c)
	var d time.Duration
	switch {
	case sit.StreamHealthy && closing:
		d = time.Duration(c.Hedge)
	case sit.StreamHealthy:
		d = time.Duration(c.SafetyNet)
	case closing:
		d = time.Duration(c.FallbackClosing)
	default:
		d = time.Duration(c.Fallback)
	}
	return jitter(d, c.Jitter, s.Rand), true
}
