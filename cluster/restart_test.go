package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// NATS restarts with the same store: the log and the leases are still
// there, the clients reconnect by themselves, the owner keeps its lease
// and its place in the log, and the subscription resumes.
func TestNATSRestartKeepsLogAndLeases(t *testing.T) {
	n := startNATS(t)
	a, b := n.bus("a"), n.bus("b")
	ctx := testCtx(t)
	la, err := a.Claim(ctx, 40)
	if err != nil {
		t.Fatal(err)
	}
	var at uint64
	for seq := uint64(1); seq <= 3; seq++ {
		if at, err = a.Append(ctx, record(40, "e", seq), at); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var delivered []uint64
	sub, err := b.Subscribe(ctx, func(e Entry) {
		mu.Lock()
		delivered = append(delivered, e.Seq)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()

	n.restart()
	restarted := time.Now()

	// The owner renews as soon as its connection is back, within its
	// lease. Each try is bounded as the keeper bounds it: a request
	// written to the old connection before the client saw it end is
	// never answered, and waited for the test's whole context.
	renew := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), a.RenewEvery())
		defer cancel()
		return a.Renew(ctx, la)
	}
	var renewErr error
	for renewErr = errors.New("not tried"); renewErr != nil; renewErr = renew() {
		if errors.Is(renewErr, ErrDeposed) || time.Since(restarted) > 5*time.Second {
			t.Fatalf("the owner could not renew within 5s of the restart: %v", renewErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("renewed %v after the restart", time.Since(restarted).Round(time.Millisecond))
	// b reconnects by itself too; a claim made before it saw its old
	// connection end is lost with it, so each try has a bound.
	claimErr := errors.New("not tried")
	for !errors.Is(claimErr, ErrHeld) {
		if time.Since(restarted) > 5*time.Second || claimErr == nil {
			t.Fatalf("b claiming a's lease after the restart: got %v, want ErrHeld", claimErr)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, claimErr = b.Claim(cctx, 40)
		cancel()
	}
	last, err := b.Last(ctx, 40)
	if err != nil {
		t.Fatal(err)
	}
	if last.Epoch != "e" || last.Seq != 3 || last.StreamSeq != at {
		t.Fatalf("after the restart the log ends with %+v, want e/3 at %d", last, at)
	}
	if _, err := a.Append(ctx, record(40, "e", 4), at); err != nil {
		t.Fatalf("the owner's append after the restart: %v", err)
	}
	waitFor(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) > 0 && delivered[len(delivered)-1] == 4
	})
	// Both nodes announce themselves again, each at its next tick once
	// its connection is back.
	waitFor(t, 5*time.Second, func() bool {
		live, err := a.LiveNodes(testCtx(t))
		return err == nil && len(live) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != 1 {
		t.Fatalf("the subscription delivered %v, want only the change appended after the restart", delivered)
	}
}
