package nellissim

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Snapshot formats: which of the three product snapshot routes answer.
const (
	// SnapshotJSON is the site before August 2026: `?_data=` answers JSON;
	// the `.data` route and the HTML page work too.
	SnapshotJSON = "json"
	// SnapshotData is Remix single fetch: `?_data=` answers 200 with an
	// empty body and only the `.data` turbo-stream route works.
	SnapshotData = "data"
	// SnapshotHTML leaves only the product page HTML: `.data` answers 404
	// and `?_data=` is empty.
	SnapshotHTML = "html"
)

// Config says what to simulate. The zero value is usable: every field has a
// default.
type Config struct {
	// Seed makes the catalogue reproducible: titles, prices, retail
	// prices, bidder names and close times relative to the start. Default: 0.
	Seed int64
	// Auctions is how many lots to list. Default: 8.
	Auctions int
	// BidInterval is the mean time between simulated rival bids across all
	// lots. Default: 0, no automatic bidding.
	BidInterval time.Duration
	// PingInterval is the time between `ping` heartbeats on every stream.
	// Default: 1s.
	PingInterval time.Duration
	// AuctionLength is when the last lots close, counted from New; lots are
	// spread between two minutes (or AuctionLength if shorter) and it.
	// Default: 30m.
	AuctionLength time.Duration
	// ExtensionInterval is the soft close in seconds: a bid this close to
	// the end moves the close to now plus this. Default: 30.
	ExtensionInterval int
	// SnapshotFormat is one of SnapshotJSON, SnapshotData, SnapshotHTML.
	// Default: SnapshotJSON.
	SnapshotFormat string
	// Now is the auction clock. Default: time.Now.
	Now func() time.Time
	// Logger receives the simulator's few logs. Default: zap.NewNop().
	Logger *zap.Logger
}

const (
	defaultAuctions          = 8
	defaultPingInterval      = time.Second
	defaultAuctionLength     = 30 * time.Minute
	defaultExtensionInterval = 30
	shortestAuction          = 2 * time.Minute
)

// withDefaults returns cfg with every zero field set to its default and
// every impossible value replaced, so New never fails.
func (cfg Config) withDefaults() Config {
	if cfg.Auctions <= 0 {
		cfg.Auctions = defaultAuctions
	}
	if cfg.BidInterval < 0 {
		cfg.BidInterval = 0
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = defaultPingInterval
	}
	if cfg.AuctionLength <= 0 {
		cfg.AuctionLength = defaultAuctionLength
	}
	if cfg.ExtensionInterval <= 0 {
		cfg.ExtensionInterval = defaultExtensionInterval
	}
	switch cfg.SnapshotFormat {
	case SnapshotJSON, SnapshotData, SnapshotHTML:
	default:
		cfg.SnapshotFormat = SnapshotJSON
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg
}

// Validate reports a configuration New would have to correct, so a caller
// such as a Caddy module can reject it instead.
func (cfg Config) Validate() error {
	switch {
	case cfg.Auctions < 0:
		return fmt.Errorf("auctions must not be negative, got %d", cfg.Auctions)
	case cfg.BidInterval < 0:
		return fmt.Errorf("bid interval must not be negative, got %s", cfg.BidInterval)
	case cfg.PingInterval < 0:
		return fmt.Errorf("ping interval must not be negative, got %s", cfg.PingInterval)
	case cfg.AuctionLength < 0:
		return fmt.Errorf("auction length must not be negative, got %s", cfg.AuctionLength)
	case cfg.ExtensionInterval < 0:
		return fmt.Errorf("extension interval must not be negative, got %d", cfg.ExtensionInterval)
	}
	switch cfg.SnapshotFormat {
	case "", SnapshotJSON, SnapshotData, SnapshotHTML:
		return nil
	}
	return fmt.Errorf("snapshot format %q is not one of %q, %q, %q",
		cfg.SnapshotFormat, SnapshotJSON, SnapshotData, SnapshotHTML)
}
