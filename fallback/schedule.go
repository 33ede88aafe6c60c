package fallback

import (
	"errors"
	"fmt"
	"time"
)

// ScheduleConfig sets the poll intervals. Zero fields take the defaults.
type ScheduleConfig struct {
	// Interval while the stream is down or disabled. Default: 2s.
	Fallback time.Duration `json:"fallback,omitempty"`
	// Interval while the stream is down in the closing window. Default: 1s.
	FallbackClosing time.Duration `json:"fallback_closing,omitempty"`
	// Safety-net interval while the stream is healthy. Default: 30s.
	SafetyNet time.Duration `json:"safety_net,omitempty"`
	// Hedge interval while the stream is healthy in the closing window,
	// where a missed event costs most. Default: 2s.
	Hedge time.Duration `json:"hedge,omitempty"`
	// How much time left makes the closing window. Default: 60s.
	ClosingWindow time.Duration `json:"closing_window,omitempty"`
	// Fraction of an interval added or taken at random so that products do
	// not poll in lockstep. Default: 0.1.
	Jitter float64 `json:"jitter,omitempty"`
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c ScheduleConfig) WithDefaults() ScheduleConfig {
	if c.Fallback == 0 {
		c.Fallback = 2 * time.Second
	}
	if c.FallbackClosing == 0 {
		c.FallbackClosing = time.Second
	}
	if c.SafetyNet == 0 {
		c.SafetyNet = 30 * time.Second
	}
	if c.Hedge == 0 {
		c.Hedge = 2 * time.Second
	}
	if c.ClosingWindow == 0 {
		c.ClosingWindow = 60 * time.Second
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
	}{{"fallback", c.Fallback}, {"fallback_closing", c.FallbackClosing}, {"safety_net", c.SafetyNet}, {"hedge", c.Hedge}, {"closing_window", c.ClosingWindow}} {
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
	return s.CloseKnown && s.TimeLeft <= c.WithDefaults().ClosingWindow
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
		d = c.Hedge
	case sit.StreamHealthy:
		d = c.SafetyNet
	case closing:
		d = c.FallbackClosing
	default:
		d = c.Fallback
	}
	return jitter(d, c.Jitter, s.Rand), true
}
