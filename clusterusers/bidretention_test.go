package clusterusers

import (
	"reflect"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/users"
)

// The first cluster start imports each user's single-node record of a
// lot's bids (tried amounts, rate window, history, an unanswered intent)
// with their user record, even for a user whose user record is empty; a
// lot the bucket holds a record of already keeps the bucket's.
func TestImportOnceCopiesBidRecords(t *testing.T) {
	n := startNATS(t)
	storage := memstorage.NewListing()
	single := users.NewStorageStore(storage, users.StorageOptions{})
	singleBids := users.NewStorageLedger(storage)
	ctx := testCtx(t)
	at := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	if err := single.Save(ctx, "alice", users.Record{Cookies: "__session=old"}, testKey); err != nil {
		t.Fatal(err)
	}
	lot7 := users.LotBids{
		Tried: []int{10, 11}, Rate: []time.Time{at},
		Bids:   []users.BidRecord{{At: at, Amount: 11, Strategy: "sniping", Result: "accepted"}},
		Intent: &users.BidIntent{Amount: 12, Strategy: "sniping", At: at.Add(time.Second)},
	}
	for _, c := range []struct {
		user string
		id   int64
		rec  users.LotBids
	}{{"alice", 7, lot7}, {"alice", 8, users.LotBids{Tried: []int{5}}}, {"bob", 9, users.LotBids{Tried: []int{20}}}} {
		if _, err := singleBids.CommitBids(ctx, c.user, c.id, c.rec, 0); err != nil {
			t.Fatal(err)
		}
	}
	a := newNode(t, n, false)
	ledger := NewLedger(a.store.KeyValue())
	// Another node recorded a bid on alice's lot 8 already.
	if _, err := ledger.CommitBids(ctx, "alice", 8, users.LotBids{Tried: []int{6}}, 0); err != nil {
		t.Fatal(err)
	}
	names, err := StoredNames(ctx, storage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.ImportOnce(ctx, single, singleBids, append(names, "bob"), testKey); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user string
		id   int64
		want users.LotBids
	}{{"alice", 7, lot7}, {"alice", 8, users.LotBids{Tried: []int{6}}}, {"bob", 9, users.LotBids{Tried: []int{20}}}} {
		got, rev, err := ledger.LoadBids(ctx, c.user, c.id)
		if err != nil || rev == 0 || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s's lot %d in the bucket: %+v (revision %d, %v), want %+v", c.user, c.id, got, rev, err, c.want)
		}
	}
}

// The sweep removes the records of lots that closed more than the
// retention ago (or, without a recorded close, whose last bid is that
// old), keeps the others, and never removes a record an owner committed
// after the sweep read it.
func TestSweepBidsRemovesEndedLots(t *testing.T) {
	n := startNATS(t)
	a := newNode(t, n, false)
	ledger := NewLedger(a.store.KeyValue())
	ctx := testCtx(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	old := now.Add(-week - time.Hour)
	recs := map[int64]users.LotBids{
		1: {Tried: []int{1}, ClosesAt: old},                                                       // closed 7 days and an hour ago
		2: {Tried: []int{1}, ClosesAt: now.Add(-time.Hour)},                                       // closed an hour ago
		3: {Bids: []users.BidRecord{{At: old, Amount: 1}}},                                        // no close known, last bid old
		4: {Bids: []users.BidRecord{{At: old, Amount: 1}}, ClosesAt: now.Add(24 * time.Hour)},     // bid long ago, still open
		5: {Bids: []users.BidRecord{{At: now.Add(-time.Hour), Amount: 1}}, ClosesAt: old},         // extended past its recorded close
		6: {Intent: &users.BidIntent{Amount: 3, At: now.Add(-time.Minute)}, ClosesAt: old},        // a bid being sent
		7: {Rate: []time.Time{now.Add(-2 * time.Minute)}, Tried: []int{2}, ClosesAt: time.Time{}}, // a recent bid
	}
	for id, rec := range recs {
		if _, err := ledger.CommitBids(ctx, "alice", id, rec, 0); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := ledger.SweepBids(ctx, now, week)
	if err != nil || removed != 2 {
		t.Fatalf("swept %d, %v; want 2", removed, err)
	}
	for id := range recs {
		_, rev, err := ledger.LoadBids(ctx, "alice", id)
		if err != nil {
			t.Fatal(err)
		}
		if gone := rev == 0; gone != (id == 1 || id == 3) {
			t.Errorf("lot %d: removed %v", id, gone)
		}
	}
	// A removed lot takes a new record from its first commit again.
	if _, err := ledger.CommitBids(ctx, "alice", 1, users.LotBids{Tried: []int{9}, ClosesAt: now}, 0); err != nil {
		t.Fatalf("a new record of a swept lot: %v", err)
	}
	if removed, err := ledger.SweepBids(ctx, now, week); err != nil || removed != 0 {
		t.Fatalf("second sweep removed %d, %v", removed, err)
	}
}

// A record keeps at most the last MaxLotBids bids.
func TestLedgerKeepsTheLastBids(t *testing.T) {
	n := startNATS(t)
	a := newNode(t, n, false)
	ledger := NewLedger(a.store.KeyValue())
	ctx := testCtx(t)
	var rec users.LotBids
	for i := range users.MaxLotBids + 30 {
		rec.Bids = append(rec.Bids, users.BidRecord{Amount: i})
	}
	if _, err := ledger.CommitBids(ctx, "alice", 1, rec, 0); err != nil {
		t.Fatal(err)
	}
	got, _, _ := ledger.LoadBids(ctx, "alice", 1)
	if len(got.Bids) != users.MaxLotBids || got.Bids[0].Amount != 30 {
		t.Fatalf("kept %d bids from amount %d, want the last %d", len(got.Bids), got.Bids[0].Amount, users.MaxLotBids)
	}
}
