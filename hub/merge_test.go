package hub

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/nellis"
)

func ptr[T any](v T) *T { return &v }

func TestMerge(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	closeAt := at.Add(5 * time.Minute)
	known := nellis.Product{
		ID: 7, Title: "Drill", CurrentBid: 100, NextBid: 101, BidCount: 4, BidderCount: 2,
		MarketStatus: "open", CloseTime: closeAt, LastBidder: "ann", Location: json.RawMessage(`{"city":"LV"}`),
	}
	closed := known
	closed.IsClosed, closed.MarketStatus, closed.FinalBid = true, "closed", 100

	tests := []struct {
		name    string
		prev    nellis.Product
		patch   nellis.Patch
		changed bool
		check   func(t *testing.T, p nellis.Product)
	}{
		{
			name:  "empty patch changes nothing",
			prev:  known,
			patch: nellis.Patch{},
		},
		{
			name:    "a bid moves price, count and bidder; missing fields stay",
			prev:    known,
			patch:   nellis.Patch{CurrentBid: ptr(125.0), BidCount: ptr(5), LastBidder: ptr("bob")},
			changed: true,
			check: func(t *testing.T, p nellis.Product) {
				if p.CurrentBid != 125 || p.BidCount != 5 || p.LastBidder != "bob" {
					t.Errorf("bid not applied: %+v", p)
				}
				if p.Title != "Drill" || p.BidderCount != 2 || !p.CloseTime.Equal(closeAt) || string(p.Location) != `{"city":"LV"}` {
					t.Errorf("a missing field blanked a known one: %+v", p)
				}
			},
		},
		{
			// A snapshot carries no bidder: keeping the known one showed the
			// bidder of an older bid beside the new price until the stream's
			// event for that bid arrived (seconds, when the stream lags).
			name:    "a newer bid without its bidder forgets the older bid's bidder",
			prev:    known,
			patch:   nellis.Patch{CurrentBid: ptr(125.0), BidCount: ptr(5)},
			changed: true,
			check: func(t *testing.T, p nellis.Product) {
				if p.CurrentBid != 125 || p.LastBidder != "" {
					t.Errorf("price %v with bidder %q; want 125 with the bidder unknown", p.CurrentBid, p.LastBidder)
				}
			},
		},
		{
			name:  "the same bid without its bidder keeps the bidder",
			prev:  known,
			patch: nellis.Patch{CurrentBid: ptr(100.0), BidCount: ptr(4)},
			check: func(t *testing.T, p nellis.Product) {
				if p.LastBidder != "ann" {
					t.Errorf("bidder %q; want ann", p.LastBidder)
				}
			},
		},
		{
			// Regression: the next bid stayed below the price until a poll,
			// so a bidder offering it was refused as too low.
			name:    "a bid without a next bid raises a next bid the price caught up with",
			prev:    withMinimum(known, 101),
			patch:   nellis.Patch{CurrentBid: ptr(125.0), BidCount: ptr(5)},
			changed: true,
			check:   nextAndMinimum(126),
		},
		{
			name:    "a next bid still above the price stays",
			prev:    withMinimum(known, 101),
			patch:   nellis.Patch{CurrentBid: ptr(100.5), BidCount: ptr(5)},
			changed: true,
			check:   nextAndMinimum(101),
		},
		{
			// Before the first bid Nellis asks for the opening price itself.
			name:    "a next bid equal to the price stays until a bid",
			prev:    withMinimum(withNext(known, 100), 100),
			patch:   nellis.Patch{Title: ptr("Cordless drill")},
			changed: true,
			check:   nextAndMinimum(100),
		},
		{
			name:    "the first bid at the opening price raises the next bid",
			prev:    withMinimum(withNext(known, 100), 100),
			patch:   nellis.Patch{CurrentBid: ptr(100.0), BidCount: ptr(5)},
			changed: true,
			check:   nextAndMinimum(101),
		},
		{
			name:    "a next bid in the patch is taken as it is",
			prev:    known,
			patch:   nellis.Patch{CurrentBid: ptr(125.0), NextBid: ptr(130.0)},
			changed: true,
			check: func(t *testing.T, p nellis.Product) {
				if p.NextBid != 130 {
					t.Errorf("next %v, want the patch's 130", p.NextBid)
				}
			},
		},
		{
			name:    "an unknown next bid stays unknown",
			prev:    withNext(known, 0),
			patch:   nellis.Patch{CurrentBid: ptr(125.0)},
			changed: true,
			check:   nextAndMinimum(0),
		},
		{
			name:  "empty strings never blank known ones",
			prev:  known,
			patch: nellis.Patch{Title: ptr(""), LastBidder: ptr(""), MarketStatus: ptr("")},
		},
		{
			name:  "a stale poll with a lower price changes no bid field",
			prev:  known,
			patch: nellis.Patch{CurrentBid: ptr(90.0), BidCount: ptr(3), NextBid: ptr(91.0), LastBidder: ptr("old"), CloseTime: ptr(at)},
			check: func(t *testing.T, p nellis.Product) {
				if p.CurrentBid != 100 || p.BidCount != 4 || p.NextBid != 101 || p.LastBidder != "ann" || !p.CloseTime.Equal(closeAt) {
					t.Errorf("stale patch regressed the product: %+v", p)
				}
			},
		},
		{
			name:  "a lower price alone is stale",
			prev:  known,
			patch: nellis.Patch{CurrentBid: ptr(95.0), LastBidder: ptr("old")},
		},
		{
			name:  "a lower bid count alone is stale",
			prev:  known,
			patch: nellis.Patch{BidCount: ptr(3), NextBid: ptr(96.0)},
		},
		{
			name:  "a zero price is stale, never a new price",
			prev:  known,
			patch: nellis.Patch{CurrentBid: ptr(0.0), BidCount: ptr(0)},
		},
		{
			name:    "a stale patch still brings non-bid fields",
			prev:    known,
			patch:   nellis.Patch{BidCount: ptr(2), ImageURL: ptr("https://img/1.jpg")},
			changed: true,
			check: func(t *testing.T, p nellis.Product) {
				if p.ImageURL != "https://img/1.jpg" || p.BidCount != 4 {
					t.Errorf("got %+v", p)
				}
			},
		},
		{
			name:    "time remaining resolves against the receive time",
			prev:    known,
			patch:   nellis.Patch{TimeRemaining: ptr(30 * time.Second)},
			changed: true,
			check: func(t *testing.T, p nellis.Product) {
				if want := at.Add(30 * time.Second); !p.CloseTime.Equal(want) {
					t.Errorf("close time %v, want %v", p.CloseTime, want)
				}
			},
		},
		{
			name:  "a close time within a second of the known one is no change",
			prev:  known,
			patch: nellis.Patch{TimeRemaining: ptr(5*time.Minute + 400*time.Millisecond)},
		},
		{
			name:  "same values are no change",
			prev:  known,
			patch: nellis.Patch{CurrentBid: ptr(100.0), BidCount: ptr(4), Title: ptr("Drill"), Location: json.RawMessage(`{"city":"LV"}`), CloseTime: ptr(closeAt.In(time.FixedZone("PT", -8*3600)))},
		},
		{
			name:    "closing sets the close fields",
			prev:    known,
			patch:   nellis.Patch{IsClosed: ptr(true), FinalBid: ptr(100.0), Winner: ptr("ann"), ClosedAt: ptr(at)},
			changed: true,
			check: func(t *testing.T, p nellis.Product) {
				if !p.IsClosed || p.FinalBid != 100 || p.Winner != "ann" || !p.ClosedAt.Equal(at) {
					t.Errorf("close not applied: %+v", p)
				}
			},
		},
		{
			name:  "closed is final",
			prev:  closed,
			patch: nellis.Patch{IsClosed: ptr(false), MarketStatus: ptr("open")},
		},
		{
			name:    "a closed lot may still become sold",
			prev:    closed,
			patch:   nellis.Patch{IsClosed: ptr(false), MarketStatus: ptr("sold")},
			changed: true,
			check: func(t *testing.T, p nellis.Product) {
				if !p.IsClosed || p.MarketStatus != "sold" {
					t.Errorf("got closed=%v status=%q", p.IsClosed, p.MarketStatus)
				}
			},
		},
		{
			name:    "location changes are copied",
			prev:    known,
			patch:   nellis.Patch{Location: json.RawMessage(`{"city":"PHX"}`)},
			changed: true,
			check: func(t *testing.T, p nellis.Product) {
				if string(p.Location) != `{"city":"PHX"}` {
					t.Errorf("location %s", p.Location)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			patch := tt.patch
			got, changed := merge(tt.prev, &patch, at)
			if changed != tt.changed {
				t.Errorf("changed = %v, want %v (got %+v)", changed, tt.changed, got)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
			if !tt.changed {
				a, _ := json.Marshal(tt.prev)
				b, _ := json.Marshal(got)
				if string(a) != string(b) {
					t.Errorf("no change reported but the product differs:\n%s\n%s", a, b)
				}
			}
		})
	}
}

// nextAndMinimum checks that the next and the minimum bid are both want.
func nextAndMinimum(want float64) func(*testing.T, nellis.Product) {
	return func(t *testing.T, p nellis.Product) {
		t.Helper()
		if p.NextBid != want || p.MinimumBid != want {
			t.Errorf("next %v, minimum %v, want both %v", p.NextBid, p.MinimumBid, want)
		}
	}
}

func withMinimum(p nellis.Product, minimum float64) nellis.Product {
	p.MinimumBid = minimum
	return p
}

func withNext(p nellis.Product, next float64) nellis.Product {
	p.NextBid = next
	return p
}

func TestMergeLocationNotAliased(t *testing.T) {
	loc := json.RawMessage(`{"city":"LV"}`)
	got, _ := merge(nellis.Product{}, &nellis.Patch{Location: loc}, time.Now())
	loc[2] = 'X'
	if string(got.Location) != `{"city":"LV"}` {
		t.Fatalf("product shares the patch's bytes: %s", got.Location)
	}
}
