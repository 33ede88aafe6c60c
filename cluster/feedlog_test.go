package cluster

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func record(product int64, epoch string, seq uint64) Record {
	return Record{
		ProductID:  product,
		Epoch:      epoch,
		Seq:        seq,
		Source:     "sse",
		ReceivedAt: time.Date(2026, 12, 6, 15, 0, 0, int(seq), time.UTC),
		Payload:    fmt.Appendf(nil, `{"id":%d,"seq":%d}`, product, seq),
	}
}

// A writer whose view of the log is stale is refused, typed ErrDeposed,
// and what the newer writer stored stays.
func TestAppendAfterAnotherWriterIsDeposed(t *testing.T) {
	n := startNATS(t)
	a, b := n.bus("a"), n.bus("b")
	ctx := testCtx(t)
	first, err := a.Append(ctx, record(7, "e1", 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	last, err := b.Last(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if last.StreamSeq != first {
		t.Fatalf("b read the log at %d, a appended at %d", last.StreamSeq, first)
	}
	if _, err := b.Append(ctx, record(7, "e1", 2), last.StreamSeq); err != nil {
		t.Fatal(err)
	}
	_, err = a.Append(ctx, record(7, "e1", 2), first)
	if !errors.Is(err, ErrDeposed) {
		t.Fatalf("a's append over b's: got %v, want ErrDeposed", err)
	}
	// A product whose log is empty takes only an append expecting 0.
	if _, err := a.Append(ctx, record(8, "e1", 1), first); !errors.Is(err, ErrDeposed) {
		t.Fatalf("append to an empty log expecting %d: got %v, want ErrDeposed", first, err)
	}
	got, err := a.Last(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Payload) != string(record(7, "e1", 2).Payload) || got.Seq != 2 {
		t.Fatalf("the log ends with %+v, want b's seq 2", got)
	}
}

// A new owner finds the last change, continues its epoch at seq+1, and a
// new feed's backfill gets the epoch's changes in order.
func TestLastContinuesEpochAndSeq(t *testing.T) {
	n := startNATS(t)
	a, b := n.bus("a"), n.bus("b")
	ctx := testCtx(t)
	if _, err := b.Last(ctx, 9); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Last of an empty log: got %v, want ErrEmpty", err)
	}
	var at uint64
	for seq := uint64(1); seq <= 5; seq++ {
		var err error
		if at, err = a.Append(ctx, record(9, "e1", seq), at); err != nil {
			t.Fatal(err)
		}
	}
	last, err := b.Last(ctx, 9)
	if err != nil {
		t.Fatal(err)
	}
	want := record(9, "e1", 5)
	if last.Epoch != "e1" || last.Seq != 5 || last.Source != "sse" || !last.ReceivedAt.Equal(want.ReceivedAt) ||
		string(last.Payload) != string(want.Payload) || last.StreamSeq != at {
		t.Fatalf("Last = %+v, want %+v at %d", last, want, at)
	}
	if _, err := b.Append(ctx, record(9, last.Epoch, last.Seq+1), last.StreamSeq); err != nil {
		t.Fatal(err)
	}
	all, err := b.Backfill(ctx, 9, 0)
	if err != nil {
		t.Fatal(err)
	}
	if seqs := seqsOf(all); fmt.Sprint(seqs) != "[1 2 3 4 5 6]" {
		t.Fatalf("Backfill(0) = %v, want 1..6", seqs)
	}
	tail, err := a.Backfill(ctx, 9, 4)
	if err != nil {
		t.Fatal(err)
	}
	if seqs := seqsOf(tail); fmt.Sprint(seqs) != "[5 6]" {
		t.Fatalf("Backfill(4) = %v, want [5 6]", seqs)
	}
	if none, err := a.Backfill(ctx, 10, 0); err != nil || len(none) != 0 {
		t.Fatalf("Backfill of an empty log = %v, %v", none, err)
	}
}

// Backfill keeps only the newest epoch, and the log only `history`
// changes per product.
func TestBackfillKeepsTheNewestEpochWithinHistory(t *testing.T) {
	n := startNATS(t)
	a := n.bus("a") // history 16
	ctx := testCtx(t)
	var at uint64
	var err error
	for seq := uint64(1); seq <= 3; seq++ {
		if at, err = a.Append(ctx, record(11, "old", seq), at); err != nil {
			t.Fatal(err)
		}
	}
	for seq := uint64(1); seq <= 4; seq++ {
		if at, err = a.Append(ctx, record(11, "new", seq), at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.Backfill(ctx, 11, 0)
	if err != nil {
		t.Fatal(err)
	}
	if seqs := seqsOf(got); fmt.Sprint(seqs) != "[1 2 3 4]" || got[0].Epoch != "new" {
		t.Fatalf("Backfill = %v of epoch %q, want 1..4 of \"new\"", seqs, got[0].Epoch)
	}
	for seq := uint64(5); seq <= 30; seq++ {
		if at, err = a.Append(ctx, record(11, "new", seq), at); err != nil {
			t.Fatal(err)
		}
	}
	got, err = a.Backfill(ctx, 11, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 16 || got[0].Seq != 15 || got[15].Seq != 30 {
		t.Fatalf("Backfill after 30 changes = %v, want the last 16 (15..30)", seqsOf(got))
	}
}

// One subscription delivers every product's appends, each product's in
// order, and nothing once stopped.
func TestSubscribeDeliversEveryProductInOrder(t *testing.T) {
	n := startNATS(t)
	a, b, c := n.bus("a"), n.bus("b"), n.bus("c")
	ctx := testCtx(t)
	// Appended before the subscription: not delivered.
	if _, err := a.Append(ctx, record(1, "e", 1), 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[int64][]uint64{}
	sub, err := c.Subscribe(ctx, func(e Entry) {
		mu.Lock()
		got[e.ProductID] = append(got[e.ProductID], e.Seq)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	last, err := a.Last(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	at1, at2 := last.StreamSeq, uint64(0)
	for seq := uint64(2); seq <= 21; seq++ {
		if at1, err = a.Append(ctx, record(1, "e", seq), at1); err != nil {
			t.Fatal(err)
		}
		if at2, err = b.Append(ctx, record(2, "e", seq-1), at2); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got[1]) >= 20 && len(got[2]) >= 20
	})
	sub.Stop()
	if _, err := a.Append(ctx, record(1, "e", 22), at1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got[1]) != fmt.Sprint(seqRange(2, 21)) || fmt.Sprint(got[2]) != fmt.Sprint(seqRange(1, 20)) {
		t.Fatalf("delivered %v, want product 1: 2..21 and product 2: 1..20, nothing after Stop", got)
	}
}

func seqsOf(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
