package bidding

import (
	"context"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/settings"
	"github.com/nellis-edge/gateway/users"
)

// Each bid's record carries the lot's close, and the sweep the engine
// starts at the gateway's start removes the record once the lot closed
// more than bid_retention ago, not before.
func TestBidRecordsAreSweptAfterTheRetention(t *testing.T) {
	ledger := users.NewStorageLedger(memstorage.NewListing())
	cfg := Config{BidRetention: settings.Duration(time.Hour)}
	r := newRigWith(t, rigOptions{cfg: cfg}, func(o *Options) { o.Ledger = ledger })
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid+3)
	next := r.lot(lot.ID).NextBid
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: float64(next + 50), Strategy: StrategyAuto, AutoBid: true}))
	ctx := context.Background()
	rec, rev, err := ledger.LoadBids(ctx, "alice", lot.ID)
	if err != nil || rev == 0 || len(rec.Bids) != 1 {
		t.Fatalf("alice's record: %+v at %d, %v", rec, rev, err)
	}
	if !rec.ClosesAt.Equal(lot.CloseTime) {
		t.Fatalf("the record's close %v, want the lot's %v", rec.ClosesAt, lot.CloseTime)
	}
	if n, err := r.engine.SweepBids(ctx); err != nil || n != 0 {
		t.Fatalf("a sweep before the lot closed removed %d, %v", n, err)
	}

	r.local.Advance(lot.CloseTime.Sub(r.local.Now()) + time.Hour + time.Minute)
	r.engine.RetainBids()
	r.engine.RetainBids() // once only
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, rev, _ := ledger.LoadBids(ctx, "alice", lot.ID); rev == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the record of a lot closed over bid_retention ago was not swept at start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBidRetentionIsChecked(t *testing.T) {
	if err := (Config{BidRetention: settings.Duration(time.Minute)}).Validate(); err == nil {
		t.Error("a retention of a minute was accepted")
	}
	if got := (Config{}).withDefaults().BidRetention; time.Duration(got) != DefaultBidRetention {
		t.Errorf("default retention %v", got)
	}
}
