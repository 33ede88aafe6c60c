package users

import "regexp"

// MaxSnipeSeconds is the longest snipe window an auction may set: a
// window of five minutes is already an auto bid.
const MaxSnipeSeconds = 300

// auctionIDPattern is what the extension's auction ids look like.
var auctionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)

// ValidAuctionID reports whether id is an auction id the extension may
// send: 1 to 100 letters, digits, '_' or '-'.
func ValidAuctionID(id string) bool { return auctionIDPattern.MatchString(id) }

// Strategies of AuctionConfig.Strategy.
const (
	StrategyAuto    = "auto"
	StrategySniping = "sniping"
	// StrategyManual labels bids a user asked for; as a configured
	// strategy (older extensions) it means no automatic bids.
	StrategyManual = "manual"
	// StrategyIncrement is older extensions' name for auto.
	StrategyIncrement = "increment"
)

// AuctionConfig is a user's bidding settings for one auction, as the
// extension sends them and as they are stored.
type AuctionConfig struct {
	// MaxBid is the most the user will pay; no automatic bid exceeds it.
	MaxBid          float64 `json:"maxBid"`
	IncrementAmount float64 `json:"incrementAmount"`
	// Strategy is auto or sniping; increment means auto and manual means
	// no automatic bids, as older extensions send them. Other values are
	// kept as sent.
	Strategy string `json:"strategy"`
	// AutoBid switches automatic bidding on for the auction.
	AutoBid bool `json:"autoBid"`
	// SnipeSeconds is this auction's snipe window in whole seconds,
	// [1, MaxSnipeSeconds]; 0 (absent) leaves the engine's default.
	SnipeSeconds int `json:"snipeSeconds,omitempty"`
}

// DefaultAuctionConfig applies when the extension starts monitoring an
// auction without a config.
var DefaultAuctionConfig = AuctionConfig{IncrementAmount: 1, Strategy: StrategyAuto}

// AutoStrategy is the strategy automatic bids follow, normalised: auto or
// sniping, "" when the config bids nothing automatically.
func (c AuctionConfig) AutoStrategy() string {
	if !c.AutoBid {
		return ""
	}
	switch c.Strategy {
	case StrategySniping:
		return StrategySniping
	case StrategyAuto, StrategyIncrement, "":
		return StrategyAuto
	}
	return ""
}

// Auction is one auction a user monitors, as persisted.
type Auction struct {
	ID        string        `json:"id"`
	ProductID int64         `json:"productId"`
	Title     string        `json:"title"`
	URL       string        `json:"url"`
	ImageURL  *string       `json:"imageUrl"`
	Config    AuctionConfig `json:"config"`
	AddedAt   int64         `json:"addedAt"` // ms since the epoch
}
