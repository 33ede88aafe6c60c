package bidding

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/users"
)

// pausingOwner is a cluster node that can be cut off from the others.
type pausingOwner struct {
	flagOwner
	paused atomic.Bool
}

func (o *pausingOwner) BidsPaused() bool { return o.paused.Load() }

// A node cut off from its cluster bids on nothing and tells the user why;
// once it is back and another node decides the lot, the state shows what
// it showed before; owning again, it bids as before.
func TestAutoBidPausedWhileTheClusterIsUnavailable(t *testing.T) {
	o := &pausingOwner{}
	o.owns.Store(true)
	r := newRigWith(t, rigOptions{}, func(opts *Options) { opts.Owner = o })
	lot := r.lots[0]
	r.rivalBid(lot.ID, lot.NextBid+3)
	r.watch(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: float64(lot.NextBid + 100), Strategy: StrategyAuto, AutoBid: true}))
	before := r.state("alice", auctionID(lot.ID))
	if before.Status != StatusWinning || len(r.bidsSent()) != 1 {
		t.Fatalf("connected: %+v, %d bids; want winning after one bid", before, len(r.bidsSent()))
	}

	o.owns.Store(false) // the lease ran out
	o.paused.Store(true)
	r.engine.Recheck() // as the hub's Standalone hook does
	r.settle()
	s := r.state("alice", auctionID(lot.ID))
	if s.Status != StatusError || s.Message != msgClusterLost {
		t.Fatalf("cut off: %s %q, want %s %q", s.Status, s.Message, StatusError, msgClusterLost)
	}
	r.rivalBid(lot.ID, r.lot(lot.ID).NextBid)
	r.advance(ownerRecheck)
	if n := len(r.bidsSent()); n != 1 {
		t.Fatalf("cut off, outbid: %d bids sent, want none after the first", n)
	}
	// A manual bid is refused at once, retryable, saying why; no owner is
	// asked (the forwarder would wait on NATS until the bid's deadline).
	fw := &fakeForwarder{}
	r.engine.SetCluster(Cluster{Owner: o, Forwarder: fw})
	res, _ := r.engine.PlaceBid(context.Background(), manualBid(lot.ID, r.lot(lot.ID).NextBid))
	if res.Success || res.ErrorType != ErrTypeNoOwner || !res.Retryable || !strings.Contains(res.Error, "Cluster unavailable") {
		t.Fatalf("a manual bid cut off: %+v", res)
	}
	if len(fw.bids) != 0 || len(r.bidsSent()) != 1 {
		t.Fatalf("a manual bid cut off was forwarded (%d) or sent (%d bids)", len(fw.bids), len(r.bidsSent()))
	}

	o.paused.Store(false) // back, another node owns the lot
	r.engine.Recheck()
	r.settle()
	if s := r.state("alice", auctionID(lot.ID)); s.Status != before.Status || s.Message != before.Message {
		t.Fatalf("back, not owning: %s %q, want what it showed before: %s %q", s.Status, s.Message, before.Status, before.Message)
	}
	o.owns.Store(true)
	r.advance(ownerRecheck)
	r.engine.Refresh(lot.ID)
	r.settle()
	if n := len(r.bidsSent()); n != 2 {
		t.Fatalf("owning again after being outbid: %d bids sent, want 2", n)
	}
}

// hangingLedger is a node's way to the shared ledger over a NATS
// connection that has gone: a read of a lot's record waits until its
// context ends.
type hangingLedger struct {
	users.BidLedger
	reading chan struct{} // gets a value as each read begins
}

func (l *hangingLedger) LoadBids(ctx context.Context, _ string, _ int64) (users.LotBids, uint64, error) {
	select {
	case l.reading <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return users.LotBids{}, 0, ctx.Err()
}

// A node cut off from its cluster while a worker reads a lot's record
// shows the user the pause at once. The read began while the node owned
// the lot and NATS had just gone; it would wait out ledgerTimeout (5 s),
// and the user's state said nothing of the pause until then (module
// TestClusterReadyAndAutoBidWithoutNATS saw it 5.2 s after the cut, 4 s
// after readiness said so, in 6 runs of 10). The cut ends the read: its
// answer is of no use to a node that may no longer bid.
func TestPauseShownWhileTheLotsRecordIsBeingRead(t *testing.T) {
	o := &pausingOwner{}
	o.owns.Store(true)
	ledger := &hangingLedger{BidLedger: users.NewStorageLedger(memstorage.New()), reading: make(chan struct{}, 1)}
	r := newRigWith(t, rigOptions{}, func(opts *Options) { opts.Owner = o; opts.Ledger = ledger })
	lot := r.lots[0]
	r.dir.set(lot.ID, alice(lot.ID, AuctionConfig{MaxBid: float64(lot.NextBid + 100), Strategy: StrategyAuto, AutoBid: true}))
	r.engine.Refresh(lot.ID)
	select {
	case <-ledger.reading:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker never read the lot's record")
	}

	o.owns.Store(false) // the lease ran out
	o.paused.Store(true)
	cut := time.Now()
	r.engine.Recheck() // as the hub's Standalone hook does
	// Well under ledgerTimeout: without the cut ending the read, the
	// pause shows only once the read gives up.
	within := ledgerTimeout / 2
	for {
		s, ok := r.engine.State("alice", auctionID(lot.ID))
		if ok && s.Status == StatusError && s.Message == msgClusterLost {
			t.Logf("the pause shown %v after the cut", time.Since(cut).Round(time.Millisecond))
			break
		}
		if time.Since(cut) > within {
			t.Fatalf("%v after the cut the state is %+v (shown %v), want the pause: the worker still waits on the read", within, s, ok)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(r.bidsSent()); n != 0 {
		t.Fatalf("%d bids sent by a node cut off", n)
	}
}
