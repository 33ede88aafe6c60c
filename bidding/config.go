package bidding

import (
	"fmt"
	"time"
)

// Defaults of Config.
const (
	DefaultBidsPerMinute = 10
	DefaultSnipeWindow   = 10 * time.Second
	// DefaultBidTimeout is the predecessor's: a bid answer later than this
	// is of no use to a snipe.
	DefaultBidTimeout = 10 * time.Second
	// HistorySize is how many bids are kept per user and auction.
	HistorySize = 100
	// maxBuffer bounds Config.Buffer; a larger one is surely a typo.
	maxBuffer = 10_000
)

// Config are the engine's switches and limits. The zero value is usable:
// bidding on, for real, with the defaults below.
type Config struct {
	// Off answers every bid with an error and stops auto-bidding (the
	// Caddyfile's `bidding off`). Default: false.
	Off bool
	// DryRun decides and reports every bid without sending it. Default:
	// false.
	DryRun bool
	// BidsPerMinute is the most bids one user may place on one auction in
	// any minute, manual and automatic together. Default: 10.
	BidsPerMinute int
	// Buffer is added, in whole dollars, to the next bid by the auto
	// strategy, to get ahead of rivals bidding the minimum. Default: 0.
	Buffer int
	// SnipeWindow is the time left under which the sniping strategy bids,
	// unless an auction sets its own snipeSeconds. Default: 10s.
	SnipeWindow time.Duration
	// BidTimeout bounds one bid request to Nellis. Default: 10s.
	BidTimeout time.Duration
}

// Validate reports a setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BidsPerMinute < 0:
		return fmt.Errorf("bids per minute must not be negative, got %d", c.BidsPerMinute)
	case c.Buffer < 0 || c.Buffer > maxBuffer:
		return fmt.Errorf("bid buffer must be 0 to %d whole dollars, got %d", maxBuffer, c.Buffer)
	case c.SnipeWindow < 0:
		return fmt.Errorf("snipe window must not be negative, got %s", c.SnipeWindow)
	case c.SnipeWindow > 0 && c.SnipeWindow < time.Second:
		return fmt.Errorf("snipe window must be at least 1s, got %s", c.SnipeWindow)
	case c.BidTimeout < 0:
		return fmt.Errorf("bid timeout must not be negative, got %s", c.BidTimeout)
	}
	return nil
}

// withDefaults fills every zero field.
func (c Config) withDefaults() Config {
	if c.BidsPerMinute == 0 {
		c.BidsPerMinute = DefaultBidsPerMinute
	}
	if c.SnipeWindow == 0 {
		c.SnipeWindow = DefaultSnipeWindow
	}
	if c.BidTimeout == 0 {
		c.BidTimeout = DefaultBidTimeout
	}
	return c
}
