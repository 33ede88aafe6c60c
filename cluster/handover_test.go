package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The node that asks for a product gets it from its owner at once, with
// no moment of two valid leases; the others see it handed over and may
// not take it.
func TestHandOverGoesToTheAskerAtOnce(t *testing.T) {
	n := startNATS(t)
	a, b, c := n.bus("a"), n.bus("b"), n.bus("c")
	asks := make(chan [2]any, 4)
	sub, err := a.ServeHandovers(testCtx(t), func(id int64, from string) { asks <- [2]any{id, from} })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	changes := make(chan OwnerChange, 16)
	watch, err := c.WatchOwners(testCtx(t), func(ch OwnerChange) { changes <- ch })
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Stop()

	la := claim(t, a, 5)
	if err := b.AskHandover(testCtx(t), 5, "a"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-asks:
		if got != [2]any{int64(5), "b"} {
			t.Fatalf("a heard the ask %v, want product 5 from b", got)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a never heard b's ask")
	}
	if err := a.HandOver(testCtx(t), la, "b"); err != nil {
		t.Fatal(err)
	}
	if la.Valid() {
		t.Fatal("a's lease is still valid after handing the product over")
	}
	_, err = c.Claim(testCtx(t), 5)
	if held, ok := errors.AsType[*HeldError](err); !ok || held.Node != "b" {
		t.Fatalf("c claiming a product handed to b: %v, want it held by b", err)
	}
	lb, err := b.Claim(testCtx(t), 5)
	if err != nil {
		t.Fatalf("b claiming the product handed to it: %v", err)
	}
	if !lb.Valid() {
		t.Fatal("b's lease is not valid")
	}
	if err := b.Renew(testCtx(t), lb); err != nil {
		t.Fatalf("b renewing: %v", err)
	}
	if err := a.Renew(testCtx(t), la); !errors.Is(err, ErrDeposed) {
		t.Fatalf("a renewing what it handed over: %v, want ErrDeposed", err)
	}
	// The bucket keeps a key's newest revision only, so a watcher reading
	// after b took the product may never see the handover between: a, then
	// possibly b handed, then b.
	want := []OwnerChange{{5, "a", false}, {5, "b", true}, {5, "b", false}}
	for len(want) > 0 {
		select {
		case got := <-changes:
			if got == want[0] {
				want = want[1:]
				continue
			}
			if want[0].Handover && len(want) > 1 && got == want[1] {
				want = want[2:]
				continue
			}
			t.Fatalf("c watched %+v, want %+v", got, want[0])
		case <-time.After(2 * time.Second):
			t.Fatalf("c watched nothing, want %+v", want[0])
		}
	}
}

// A product handed to a node that never takes it is free for the others
// a full lease later, as from a silent holder; and not before.
func TestHandOverToAnAbsentNodeRunsOut(t *testing.T) {
	n := startNATS(t)
	a, c := n.bus("a"), n.bus("c")
	la := claim(t, a, 6)
	if err := a.HandOver(testCtx(t), la, "b"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	claimUntil(t, c, 6, 3*time.Second)
	if took := time.Since(start); took < time.Second {
		t.Fatalf("c took a product handed to b after %v, before a full lease", took)
	}
	// a handed it away: its own old key is not its own to take again.
	if _, err := a.Claim(testCtx(t), 6); !errors.Is(err, ErrHeld) {
		t.Fatalf("a claiming what c holds: %v, want ErrHeld", err)
	}
}

// A node of another build, or an ask gone astray: a handover's target and
// asks must be node names, never a subject's wildcard.
func TestHandoverNamesAreChecked(t *testing.T) {
	n := startNATS(t)
	a := n.bus("a")
	l := claim(t, a, 7)
	for _, bad := range []string{"b.>", "*", "a>b", ""} {
		if err := a.AskHandover(context.Background(), 7, bad); err == nil {
			t.Errorf("asking %q: no error", bad)
		}
		if err := a.HandOver(testCtx(t), l, bad); err == nil {
			t.Errorf("handing over to %q: no error", bad)
		}
	}
}

// Between two nodes the rendezvous hash ranks one above the other, the
// same one it picks among all live nodes.
func TestOutranksAgreesWithRendezvous(t *testing.T) {
	nodes := []string{"gw-a", "gw-b", "gw-c"}
	for id := int64(1); id <= 200; id++ {
		best := Rendezvous(id, nodes)
		for _, other := range nodes {
			if other == best {
				if Outranks(id, other, best) {
					t.Fatalf("product %d: %s outranks itself", id, best)
				}
				continue
			}
			if !Outranks(id, best, other) || Outranks(id, other, best) {
				t.Fatalf("product %d: %s is picked among %v but does not outrank %s", id, best, nodes, other)
			}
		}
	}
}
