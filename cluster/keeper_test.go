package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// The keeper keeps twenty leases for three lease periods against another
// node's claims, reports one taken from it, and hands the rest over at
// once when closed.
func TestKeeperRenewsReportsAndHandsOver(t *testing.T) {
	n := startNATS(t)
	a, b := n.bus("a"), n.bus("b")
	var mu sync.Mutex
	var lost []int64
	k := NewKeeper(a, func(p int64) {
		mu.Lock()
		lost = append(lost, p)
		mu.Unlock()
	})
	closed := false
	defer func() {
		if !closed {
			_ = k.Close(testCtx(t))
		}
	}()
	for p := range int64(20) {
		l := claim(t, a, p)
		k.Add(l)
	}
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		for p := range int64(20) {
			if _, err := b.Claim(testCtx(t), p); !errors.Is(err, ErrHeld) {
				t.Fatalf("b claiming kept product %d: got %v, want ErrHeld", p, err)
			}
			if !k.Lease(p).Valid() {
				t.Fatalf("kept lease %d went invalid", p)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Another writer of product 7's key (an operator, a bug): the keeper's
	// next renewal finds it and reports the loss.
	if _, err := b.owners.Put(testCtx(t), ownerKey(7), []byte("b")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprint(lost) == "[7]"
	})
	if k.Lease(7) != nil {
		t.Fatal("the keeper still holds the lost lease")
	}

	if err := k.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	closed = true
	for p := range int64(20) {
		if p == 7 {
			continue
		}
		if _, err := b.Claim(testCtx(t), p); err != nil {
			t.Fatalf("b claiming product %d after the keeper closed: %v", p, err)
		}
	}
	l := claim(t, a, 99)
	if k.Add(l) {
		t.Fatal("a closed keeper took a lease")
	}
	if _, err := b.Claim(testCtx(t), 99); err != nil {
		t.Fatalf("a lease given to a closed keeper was not released: %v", err)
	}
}

// A new owner continues the epoch at seq+1; the old owner, stalled past
// its lease, is refused; an empty log starts a fresh epoch at 1.
func TestTakeOverContinuesTheEpoch(t *testing.T) {
	n := startNATS(t)
	a, b := n.bus("a"), n.bus("b")
	ctx := testCtx(t)
	la := claim(t, a, 50)
	wa, err := TakeOver(ctx, a, la, func() string { return "epoch-a" })
	if err != nil {
		t.Fatal(err)
	}
	if wa.Epoch() != "epoch-a" || wa.Seq() != 0 {
		t.Fatalf("on an empty log: epoch %q seq %d, want a fresh epoch at 0", wa.Epoch(), wa.Seq())
	}
	for range 3 {
		if _, err := wa.Append(ctx, "sse", time.Now(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	lb := claimUntil(t, b, 50, 3*time.Second) // a stalls: no renewal
	wb, err := TakeOver(ctx, b, lb, func() string { return "epoch-b" })
	if err != nil {
		t.Fatal(err)
	}
	if wb.Epoch() != "epoch-a" || wb.Seq() != 3 {
		t.Fatalf("the new owner continues %q at %d, want epoch-a after 3", wb.Epoch(), wb.Seq())
	}
	e, err := wb.Append(ctx, "poll", time.Now(), []byte("y"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 4 || e.Epoch != "epoch-a" {
		t.Fatalf("the new owner appended %s/%d, want epoch-a/4", e.Epoch, e.Seq)
	}
	if _, err := wa.Append(ctx, "sse", time.Now(), []byte("late")); !errors.Is(err, ErrLapsed) {
		t.Fatalf("the stalled owner's append: got %v, want ErrLapsed", err)
	}
	// Even a writer ignoring its lease is fenced by the log.
	if _, err := a.Append(ctx, Record{ProductID: 50, Epoch: "epoch-a", Seq: 4}, wa.cursor); !errors.Is(err, ErrDeposed) {
		t.Fatalf("an append behind the new owner's: got %v, want ErrDeposed", err)
	}
	if err := a.Renew(ctx, la); !errors.Is(err, ErrDeposed) {
		t.Fatalf("the stalled owner's renewal: %v", err)
	}
	if _, err := wa.Append(ctx, "sse", time.Now(), []byte("late")); !errors.Is(err, ErrDeposed) {
		t.Fatalf("the deposed owner's append: got %v, want ErrDeposed", err)
	}
	got, err := a.Backfill(ctx, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqsOf(got)) != "[1 2 3 4]" {
		t.Fatalf("the log holds %v, want 1..4", seqsOf(got))
	}
}

// slowRenewBus answers every renewal late, as a loaded machine or a
// distant NATS does.
type slowRenewBus struct {
	*JetStream
	delay time.Duration
}

func (b *slowRenewBus) Renew(ctx context.Context, l *Lease) error {
	time.Sleep(b.delay)
	return b.JetStream.Renew(ctx, l)
}

// Forty leases whose renewals each take 30 ms stay valid: one after the
// other they would take 1.2 s a pass, longer than the lease (1 s) they
// must keep valid.
func TestKeeperKeepsManyLeasesWhenNATSIsSlow(t *testing.T) {
	n := startNATS(t)
	a := n.bus("a")
	k := NewKeeper(&slowRenewBus{JetStream: a, delay: 30 * time.Millisecond}, nil)
	defer func() { _ = k.Close(testCtx(t)) }()
	const leases = 40
	for p := range int64(leases) {
		k.Add(claim(t, a, p))
	}
	end := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(end) {
		for p := range int64(leases) {
			if l := k.Lease(p); l == nil || !l.Valid() {
				t.Fatalf("lease %d went invalid while kept", p)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
