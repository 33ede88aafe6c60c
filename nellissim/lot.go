package nellissim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"time"
)

// Bid refusals, as Nellis words them; bidStatus maps each to its HTTP status.
var (
	errBidTooLow     = errors.New("Your bid is too low")
	errBidSamePrice  = errors.New("You have already placed a bid with the same price")
	errAuctionEnded  = errors.New("This auction has ended")
	errUnknownLot    = errors.New("product not found")
	errNoBidder      = errors.New("bidder name is empty")
	errSimulatorDown = errors.New("simulator is closed")
)

// lot is one auction. Every field is guarded by Simulator.mu.
type lot struct {
	id              int64
	title           string
	slug            string
	retailPrice     float64
	inventoryNumber string
	location        location
	photos          []string
	openTime        time.Time

	closeTime time.Time
	extended  bool // the last bid moved the close time
	price     int  // the current bid, whole dollars
	bidCount  int
	leader    string         // the high bidder; "" before the first bid
	maxes     map[string]int // each bidder's maximum (proxy) bid
	history   []bidEntry     // oldest first
	userBids  []UserBid      // users' bid requests, oldest first
	closed    bool
	closedAt  time.Time

	streams map[*stream]struct{}
	faults  lotFaults
	stats   Stats
}

type bidEntry struct {
	at     time.Time
	bidder string
	amount int
}

// bidOutcome is the state after an accepted bid: what the bid response and
// the SSE bid event report.
type bidOutcome struct {
	outbid   bool // another bidder's maximum beat or matched the bid
	extended bool // the bid moved the close time (soft close)
}

func (l *lot) nextBid() int { return l.price + 1 }

func (l *lot) path() string { return fmt.Sprintf("/p/%s/%d", l.slug, l.id) }

// placeBid runs Nellis-style proxy bidding. Each bidder has a maximum; the
// leader's maximum defends against lower bids, raising the price to just
// above the challenger. A jump bid (a rival emitted by a test) sets the
// price to exactly its amount when it takes the lead, instead of one dollar
// above the previous maximum.
func (l *lot) placeBid(now time.Time, ext time.Duration, bidder string, amount int, jump bool) (bidOutcome, error) {
	var out bidOutcome
	switch {
	case bidder == "":
		return out, errNoBidder
	case l.closed:
		return out, errAuctionEnded
	case amount < l.nextBid():
		return out, errBidTooLow
	case l.maxes[bidder] == amount:
		return out, errBidSamePrice
	}
	leaderMax := l.maxes[l.leader]
	switch {
	case l.leader == bidder:
		if amount < leaderMax {
			return out, errBidTooLow
		}
		// The leader raises their own maximum; the price stays.
		l.maxes[bidder] = amount
		l.bidCount++
	case l.leader != "" && leaderMax >= amount:
		// The leader's maximum defends: the challenger is outbid at once.
		l.maxes[bidder] = max(l.maxes[bidder], amount)
		l.history = append(l.history, bidEntry{now, bidder, amount})
		l.price = min(leaderMax, amount+1)
		l.history = append(l.history, bidEntry{now, l.leader, l.price})
		l.bidCount += 2
		out.outbid = true
	default:
		price := l.nextBid()
		switch {
		case jump:
			price = amount
		case l.leader != "":
			price = max(price, min(amount, leaderMax+1))
		}
		l.maxes[bidder] = amount
		l.leader = bidder
		l.price = price
		l.history = append(l.history, bidEntry{now, bidder, price})
		l.bidCount++
	}
	// Soft close: a bid in the last ExtensionInterval moves the close.
	l.extended = false
	if l.closeTime.Sub(now) < ext {
		l.closeTime = now.Add(ext)
		l.extended = true
		out.extended = true
	}
	return out, nil
}

// close marks the lot closed at the given instant. It reports false when the
// lot was closed already, so the closed event is sent once.
func (l *lot) close(at time.Time) bool {
	if l.closed {
		return false
	}
	l.closed, l.closedAt = true, at
	return true
}

func (l *lot) timeRemaining(now time.Time) int {
	if l.closed || !now.Before(l.closeTime) {
		return 0
	}
	return int(l.closeTime.Sub(now).Round(time.Second) / time.Second)
}

// userID is the numeric id Nellis reports as winningBidUserId; the simulator
// derives it from the bidder's name so it is stable.
func userID(name string) int {
	if name == "" {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return 100_000 + int(h.Sum32()%900_000)
}

// maskName hides a bidder the way the site's bid history does ("b***1").
func maskName(name string) string {
	r := []rune(name)
	if len(r) < 2 {
		return "***"
	}
	return string(r[0]) + "***" + string(r[len(r)-1])
}
