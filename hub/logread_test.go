package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/internal/natstest"
	"github.com/nellis-edge/gateway/nellis"
)

// fillLog appends seqs 1..history of epoch "e" to each product's log
// through bus, the price of seq n being 100+n, several products at once.
func fillLog(t testing.TB, bus *cluster.JetStream, ids []int64, history int) {
	t.Helper()
	var wg sync.WaitGroup
	var failed atomic.Value
	next := make(chan int64)
	for range 16 {
		wg.Go(func() {
			for id := range next {
				var at uint64
				for seq := 1; seq <= history; seq++ {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					var err error
					at, err = bus.Append(ctx, logRecord(id, uint64(seq)), at)
					cancel()
					if err != nil {
						failed.CompareAndSwap(nil, err)
						return
					}
				}
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(err)
	}
}

func logRecord(id int64, seq uint64) cluster.Record {
	body, _ := json.Marshal(nellis.Product{ID: id, CurrentBid: 100 + float64(seq), BidCount: int(seq)})
	return cluster.Record{ProductID: id, Epoch: "e", Seq: seq, Source: string(SourceSSE), ReceivedAt: time.Now(), Payload: body}
}

// readCountingBus counts its Backfill calls and failures, and finds every
// product held by gw-a, as if gw-a renewed its leases: the reader claims
// none, however long the test takes.
type readCountingBus struct {
	*cluster.JetStream
	reads, failed atomic.Int64
}

func (b *readCountingBus) Backfill(ctx context.Context, id int64, since uint64) ([]cluster.Entry, error) {
	b.reads.Add(1)
	got, err := b.JetStream.Backfill(ctx, id, since)
	if err != nil {
		b.failed.Add(1)
	}
	return got, err
}

func (b *readCountingBus) Claim(_ context.Context, id int64) (*cluster.Lease, error) {
	return nil, &cluster.HeldError{ProductID: id, Node: "gw-a"}
}

// A reader node whose clients ask for 2,000 lots at once, each with a
// full log owned by another node: every lot's feed gets the lot's
// history, and a client resuming within it is recovered. (With a
// consumer per read, 4 of the 2,000 feeds had their history after 90 s:
// 1,996 reads failed, mostly refused by the stream's 1,000-consumer limit,
// and were not tried again; the join made 7,194 JetStream API requests,
// 5,098 of them consumer creations, the live nodes' listing included.)
func TestReaderJoinsThousandsOfLots(t *testing.T) {
	const lots, history = 2000, 16
	r := newClusterRig(t)
	// The default lease: with the tests' 1 s, a -race build on a busy
	// machine may miss two pings in a row and go standalone.
	r.lease = 3 * time.Second
	owner, err := cluster.New(cluster.Config{Servers: []string{r.nats.URL()}, Node: "gw-a", Lease: 1e9, History: history})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := owner.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Close() })
	ids := make([]int64, lots)
	for i := range ids {
		ids[i] = int64(1001 + i)
	}
	fillLog(t, owner, ids, history)

	var counted *readCountingBus
	reader := r.node("gw-b", func(j *cluster.JetStream) cluster.Bus {
		counted = &readCountingBus{JetStream: j}
		return counted
	})
	api := natstest.CountAPI(t, r.nats.URL())
	logs := make([]*changeLog, lots)
	start := time.Now()
	for i, id := range ids {
		logs[i] = new(changeLog)
		reader.h.Subscribe(id, logs[i])
	}
	// A -race build on a busy 2-core machine sweeps the log about 20
	// times slower than a plain one (about 0.5 s).
	deadline := start.Add(90 * time.Second)
	for i := 0; i < lots; {
		all := logs[i].all()
		if len(all) > 0 && all[len(all)-1].Seq == history {
			i++
			continue
		}
		if time.Now().After(deadline) {
			filled := 0
			for _, l := range logs {
				if all := l.all(); len(all) > 0 && all[len(all)-1].Seq == history {
					filled++
				}
			}
			t.Fatalf("%d of %d lots' feeds got their history within 90 s (%d reads, %d failed; JetStream API requests %v); lot %d's feed got %q",
				filled, lots, counted.reads.Load(), counted.failed.Load(), api, ids[i], summary(all))
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("%d lots × %d entries: every feed read the log's past in %v; %d reads, %d failed; JetStream API requests %v",
		lots, history, took.Round(time.Millisecond), counted.reads.Load(), counted.failed.Load(), api)
	for i, id := range ids {
		checkOrder(t, fmt.Sprintf("lot %d", id), logs[i].all())
		got, ok := reader.h.Since(id, "e", history-4)
		if !ok || len(got) != 4 || got[3].Product.CurrentBid != 100+history {
			t.Fatalf("lot %d: a client resuming at seq %d got %s, %v; want the last 4 changes", id, history-4, summary(got), ok)
		}
	}
	// A few sweeps of the log, and after them one listing of the live
	// nodes for all the feeds' first claims, not a consumer each.
	time.Sleep(time.Second)
	if n := api.Total(); n > lots/4 {
		t.Errorf("the join made %d JetStream API requests for %d lots: %v", n, lots, api)
	}
}

// flakyReadBus fails every Backfill while failing is set.
type flakyReadBus struct {
	*cluster.JetStream
	failing atomic.Bool
}

func (b *flakyReadBus) Backfill(ctx context.Context, id int64, since uint64) ([]cluster.Entry, error) {
	if b.failing.Load() {
		return nil, errors.New("nats: timeout")
	}
	return b.JetStream.Backfill(ctx, id, since)
}

// A new feed whose read of a quiet lot's log fails has no state and
// answers a resuming client recovered:false; the failures are reported
// (Hooks.LogRead, and the log); it reads the log again, and then has the
// lot's state and history, with no new change to the lot.
func TestFailedLogReadIsRetried(t *testing.T) {
	const id, history = 77, 6
	r := newClusterRig(t)
	r.lease = 30 * time.Second // the owner below holds the lot throughout
	owner := r.node("gw-a", nil)
	ctx := testCtxHub(t)
	if _, err := owner.jet.Claim(ctx, id); err != nil {
		t.Fatal(err)
	}
	fillLog(t, owner.jet, []int64{id}, history)

	var flaky *flakyReadBus
	var readsOK, readsFailed atomic.Int64
	reader := r.node("gw-b", func(j *cluster.JetStream) cluster.Bus {
		flaky = &flakyReadBus{JetStream: j}
		flaky.failing.Store(true)
		return flaky
	}, func(d *Deps) {
		d.Hooks.LogRead = func(_ int64, ok bool) {
			if ok {
				readsOK.Add(1)
			} else {
				readsFailed.Add(1)
			}
		}
	})
	got := new(changeLog)
	reader.h.Subscribe(id, got)
	waitFor(t, "two failed reads, reported", func() bool { return readsFailed.Load() >= 2 })
	if c, ok := reader.h.State(id); ok {
		t.Fatalf("the feed's read failed, yet State = seq %d", c.Seq)
	}
	if changes, ok := reader.h.Since(id, "e", 3); ok {
		t.Fatalf("the feed's read failed, yet a client resuming at e/3 got %s, recovered", summary(changes))
	}
	if n := readsOK.Load(); n != 0 {
		t.Fatalf("%d of the failing reads were reported ok", n)
	}
	flaky.failing.Store(false)
	got.waitPrice(t, "gw-b", 100+history)
	waitFor(t, "the read reported", func() bool { return readsOK.Load() >= 1 })
	if c, ok := reader.h.State(id); !ok || c.Seq != history {
		t.Fatalf("State after the retry = %v, %v; want seq %d", c, ok, history)
	}
	changes, ok := reader.h.Since(id, "e", 3)
	if !ok || summary(changes) != "e/4=104 e/5=105 e/6=106 " {
		t.Fatalf("a client resuming at e/3 got %s, %v; want seqs 4..6", summary(changes), ok)
	}
	checkOrder(t, "gw-b", got.all())
}
