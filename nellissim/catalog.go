package nellissim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode"
)

// The catalogue is generated from these lists by a generator seeded with
// Config.Seed, so two simulators with one seed list the same lots.
var (
	brands = []string{"Keurig", "Ninja", "Dewalt", "Samsung", "Lasko", "Igloo", "Shark",
		"Coleman", "Hamilton Beach", "Bissell", "Cuisinart", "Anker", "Rubbermaid", "Sunbeam"}
	items = []string{"Coffee Maker", "Air Fryer", "Cordless Drill Kit", "27\" Monitor",
		"Tower Fan", "Rolling Cooler", "Robot Vacuum", "4-Person Tent", "Stand Mixer",
		"Carpet Cleaner", "Power Bank", "Storage Shelf", "Space Heater", "Desk (width 22\"-36\")"}
	qualifiers = []string{"", "", "New", "Open Box", "Like New", "Damaged Box", "2-Pack", "& Accessories"}
	rivalNames = []string{"desertfox", "bidhawk", "lvdeals", "phxpicker", "sunsetsniper",
		"mojave", "flipper", "garagegold", "boxhunter", "thriftking", "latebid", "cactusjack"}
)

// location is a Nellis warehouse, as `product.location` carries it.
type location struct {
	id       int
	name     string
	timezone string
	address  string
	city     string
	state    string
	zipCode  int
}

var locations = []location{
	{10, "Phoenix", "America/Phoenix", "1402 S 40th Ave", "Phoenix", "AZ", 85009},
	{1, "Dean Martin", "America/Los_Angeles", "4031 Market Center Dr", "North Las Vegas", "NV", 89030},
	{3, "Decatur", "America/Los_Angeles", "3310 S Decatur Blvd", "Las Vegas", "NV", 89102},
}

func (l location) value() object {
	return object{
		{"id", l.id}, {"name", l.name}, {"offsite", false}, {"timezone", l.timezone},
		{"address", l.address}, {"city", l.city}, {"state", l.state}, {"zipCode", l.zipCode},
	}
}

// newCatalog builds the lots: ids, titles, prices, earlier bids and close
// times relative to start, all drawn from rng in a fixed order.
func newCatalog(rng *rand.Rand, cfg Config, start time.Time) ([]*lot, []string) {
	rivals := make([]string, len(rivalNames))
	for i, n := range rivalNames {
		rivals[i] = fmt.Sprintf("%s%d", n, 10+rng.IntN(90))
	}
	earliest := min(shortestAuction, cfg.AuctionLength)
	spread := cfg.AuctionLength - earliest
	id := int64(58_000_000 + rng.IntN(100_000))
	lots := make([]*lot, 0, cfg.Auctions)
	for i := range cfg.Auctions {
		id += int64(1 + rng.IntN(500))
		title := brands[rng.IntN(len(brands))] + " " + items[rng.IntN(len(items))]
		if q := qualifiers[rng.IntN(len(qualifiers))]; q != "" {
			title += " " + q
		}
		retail := float64(1999+rng.IntN(80000)) / 100
		closeAt := start.Add(earliest)
		if spread > 0 {
			closeAt = closeAt.Add(time.Duration(rng.Int64N(int64(spread) + 1))).Truncate(time.Second)
		}
		l := &lot{
			id:              id,
			title:           title,
			slug:            slugOf(title),
			retailPrice:     retail,
			inventoryNumber: fmt.Sprintf("%010d", 1+rng.IntN(999_999_999)),
			location:        locations[rng.IntN(len(locations))],
			photos:          []string{fmt.Sprintf("https://images.nellissim.invalid/%d/1.jpg", id)},
			openTime:        start.Add(-time.Duration(1+rng.IntN(72)) * time.Hour),
			closeTime:       closeAt,
			maxes:           make(map[string]int),
			streams:         make(map[*stream]struct{}),
		}
		// Most lots already carry a few bids, like a live site does.
		bids := rng.IntN(8)
		price := 0
		for b := range bids {
			price += 1 + rng.IntN(5)
			bidder := rivals[rng.IntN(len(rivals))]
			l.maxes[bidder] = max(l.maxes[bidder], price)
			l.leader = bidder
			l.history = append(l.history, bidEntry{
				at: l.openTime.Add(time.Duration(b+1) * time.Hour), bidder: bidder, amount: price,
			})
		}
		l.price, l.bidCount = price, bids
		if i == 0 {
			l.photos = append(l.photos, fmt.Sprintf("https://images.nellissim.invalid/%d/2.jpg", id))
		}
		lots = append(lots, l)
	}
	return lots, rivals
}

// slugOf turns a title into the URL slug Nellis uses: words joined by dashes.
func slugOf(title string) string {
	words := strings.FieldsFunc(title, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	words = slices.DeleteFunc(words, func(w string) bool { return w == "" })
	return strings.Join(words, "-")
}
