package users

import (
	"slices"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/memstorage"
)

// On a single node the sweep removes the records of lots that ended more
// than the retention ago and keeps the rest; Lots lists what a user has.
func TestStorageLedgerSweepsEndedLots(t *testing.T) {
	l := NewStorageLedger(memstorage.NewListing())
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	old := now.Add(-week - time.Minute)
	for _, c := range []struct {
		user string
		id   int64
		rec  LotBids
	}{
		{"alice", 1, LotBids{Tried: []int{1}, ClosesAt: old}},
		{"alice", 2, LotBids{Tried: []int{1}, ClosesAt: now.Add(-time.Hour)}},
		{"alice", 3, LotBids{Bids: []BidRecord{{At: old}}, ClosesAt: now.Add(time.Hour)}},
		{"bob", 4, LotBids{Bids: []BidRecord{{At: old}}}},
		{"bob", 5, LotBids{Rate: []time.Time{now.Add(-time.Minute)}}},
	} {
		if _, err := l.CommitBids(ctx, c.user, c.id, c.rec, 0); err != nil {
			t.Fatal(err)
		}
	}
	if lots, err := l.Lots(ctx, "alice"); err != nil || !slices.Equal(lots, []int64{1, 2, 3}) {
		t.Fatalf("alice's lots %v, %v", lots, err)
	}
	removed, err := l.SweepBids(ctx, now, week)
	if err != nil || removed != 2 {
		t.Fatalf("swept %d, %v; want 2", removed, err)
	}
	for user, want := range map[string][]int64{"alice": {2, 3}, "bob": {5}} {
		if lots, err := l.Lots(ctx, user); err != nil || !slices.Equal(lots, want) {
			t.Errorf("%s's lots after the sweep %v, %v; want %v", user, lots, err, want)
		}
	}
	// A swept lot's record starts again at its first commit.
	if _, err := l.CommitBids(ctx, "alice", 1, LotBids{Tried: []int{2}, ClosesAt: now}, 0); err != nil {
		t.Fatalf("a new record of a swept lot: %v", err)
	}
}

// A record keeps at most the last MaxLotBids bids.
func TestStorageLedgerKeepsTheLastBids(t *testing.T) {
	l := NewStorageLedger(memstorage.New())
	var rec LotBids
	for i := range MaxLotBids + 5 {
		rec.Bids = append(rec.Bids, BidRecord{Amount: i})
	}
	if _, err := l.CommitBids(t.Context(), "alice", 1, rec, 0); err != nil {
		t.Fatal(err)
	}
	got, _, _ := l.LoadBids(t.Context(), "alice", 1)
	if len(got.Bids) != MaxLotBids || got.Bids[0].Amount != 5 {
		t.Fatalf("kept %d bids from %d", len(got.Bids), got.Bids[0].Amount)
	}
}
