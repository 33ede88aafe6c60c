package bidding

import (
	"fmt"
	"time"

	"github.com/nellis-edge/gateway/settings"
	"github.com/nellis-edge/gateway/users"
)

// Defaults of Config.
const (
	DefaultBidsPerMinute = 10
	DefaultSnipeWindow   = 10 * time.Second
	// DefaultBidTimeout is the predecessor's: a bid answer later than this
	// is of no use to a snipe.
	DefaultBidTimeout = 10 * time.Second
	// HistorySize is how many bids are kept per user and auction.
	HistorySize = users.MaxLotBids
	// DefaultBidRetention keeps a lot's bid records a week after it closed:
	// long enough to look into a disputed bid, short enough that the
	// records of a busy deployment stay bounded.
	DefaultBidRetention = 7 * 24 * time.Hour
	// MinBidRetention bounds Config.BidRetention from below: a lot's
	// record must outlive its close by more than a soft close's extensions.
	MinBidRetention = time.Hour
	// maxBuffer bounds Config.Buffer; a larger one is surely a typo.
	maxBuffer = 10_000
)

// Config are the engine's switches and limits. The zero value is usable:
// bidding on, for real, with the defaults below. A field with a JSON name
// is a setting of the Caddy app's `nellis` block (the app's `bidding`
// object embeds this struct); the switches, which the app keeps as
// pointers to catch contradicting blocks, it sets itself.
type Config struct {
	// Off answers every bid with an error and stops auto-bidding (the
	// Caddyfile's `bidding off`). Default: false.
	Off bool `json:"-"`
	// DryRun decides and reports every bid without sending it (the
	// Caddyfile's `dry_run on`). Default: false.
	DryRun bool `json:"-"`
	// BidsPerMinute is the most bids one user may place on one auction in
	// any minute, manual and automatic together. Default: 10.
	BidsPerMinute int `json:"bids_per_minute,omitempty"`
	// Buffer is added, in whole dollars, to the next bid by the auto
	// strategy, to get ahead of rivals bidding the minimum (the
	// Caddyfile's `bid_buffer`; the JSON name predates it). Default: 0.
	Buffer int `json:"buffer,omitempty"`
	// SnipeWindow is the time left under which the sniping strategy bids,
	// unless an auction sets its own snipeSeconds. Default: 10s.
	SnipeWindow settings.Duration `json:"snipe_window,omitempty"`
	// BidTimeout is the longest one bid waits for Nellis's answer; the
	// relay waits for the bidder a little longer. Default: 10s.
	BidTimeout settings.Duration `json:"bid_timeout,omitempty"`
	// BidRetention is how long each user's record of a lot's bids (tried
	// amounts, rate window, last bids) is kept after the lot closed, or
	// after its last bid when its close is unknown; a sweep at start and
	// daily removes older ones. Default: 168h (7 days).
	BidRetention settings.Duration `json:"bid_retention,omitempty"`
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
	case c.SnipeWindow > 0 && time.Duration(c.SnipeWindow) < time.Second:
		return fmt.Errorf("snipe window must be at least 1s, got %s", c.SnipeWindow)
	case c.BidTimeout < 0:
		return fmt.Errorf("bid timeout must not be negative, got %s", c.BidTimeout)
	case c.BidRetention != 0 && time.Duration(c.BidRetention) < MinBidRetention:
		return fmt.Errorf("bid retention must be at least %s, got %s", MinBidRetention, c.BidRetention)
	}
	return nil
}

// withDefaults fills every zero field.
func (c Config) withDefaults() Config {
	if c.BidsPerMinute == 0 {
		c.BidsPerMinute = DefaultBidsPerMinute
	}
	if c.SnipeWindow == 0 {
		c.SnipeWindow = settings.Duration(DefaultSnipeWindow)
	}
	if c.BidTimeout == 0 {
		c.BidTimeout = settings.Duration(DefaultBidTimeout)
	}
	if c.BidRetention == 0 {
		c.BidRetention = settings.Duration(DefaultBidRetention)
	}
	return c
}
