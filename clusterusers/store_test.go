package clusterusers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/users"
)

var testKey = bytes.Repeat([]byte{7}, 32)

// node is one gateway's side of the users: its Directory, changed under
// mu as the relay changes it under its lock, and its store.
type node struct {
	t     *testing.T
	store *Store
	mu    sync.Mutex
	dir   *users.Directory
}

// newNode connects a node to n and loads alice; watch starts the watch.
func newNode(t *testing.T, n *natsServer, watch bool) *node {
	t.Helper()
	_, js := n.connect()
	nd := &node{t: t, dir: users.NewDirectory()}
	nd.dir.Set(map[string]string{"alice": "alice-token-0123456789"})
	s, err := Open(testCtx(t), js, Options{Prefix: "t", Replicas: 1, Key: func() []byte { return testKey }, Changed: nd.changed})
	if err != nil {
		t.Fatal(err)
	}
	nd.store = s
	t.Cleanup(s.Close)
	rec, err := s.Load(testCtx(t), "alice", testKey)
	if err != nil {
		t.Fatal(err)
	}
	nd.dir.Restore("alice", rec)
	if watch {
		if err := s.Watch(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return nd
}

func (nd *node) changed(name string, merge func(users.Record) users.Record) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	local, _ := nd.dir.Record(name)
	nd.dir.Restore(name, merge(local))
}

// edit changes alice here and saves her record, as the relay and its
// saver do.
func (nd *node) edit(change func(d *users.Directory)) {
	nd.t.Helper()
	nd.mu.Lock()
	change(nd.dir)
	nd.mu.Unlock()
	if err := nd.store.SaveSnapshot(context.Background(), "alice", func() (users.Record, bool) { return nd.record(), true }, testKey); err != nil {
		nd.t.Error(err)
	}
}

func (nd *node) record() users.Record {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	rec, _ := nd.dir.Record("alice")
	return rec
}

// within waits at most d for ok on every node and fails naming what.
func within(t *testing.T, d time.Duration, what string, nodes []*node, ok func(users.Record) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		all := true
		for _, nd := range nodes {
			all = all && ok(nd.record())
		}
		if all {
			return time.Since(start)
		}
		if time.Since(start) > d {
			var had []string
			for _, nd := range nodes {
				rec := nd.record()
				ids := make([]string, 0, len(rec.Auctions))
				for _, a := range rec.Auctions {
					ids = append(ids, a.ID)
				}
				had = append(had, fmt.Sprintf("auctions %v, cookies %t", ids, rec.Cookies != ""))
			}
			t.Fatalf("%s: not on every node within %v; they have %q", what, d, had)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func auctionOf(rec users.Record, id string) (users.Auction, bool) {
	for _, a := range rec.Auctions {
		if a.ID == id {
			return a, true
		}
	}
	return users.Auction{}, false
}

// Monitor on A, change the config on B, sync cookies on C: each change
// is on all three nodes within 250 ms of its save.
func TestUserStateConvergesAcrossThreeNodes(t *testing.T) {
	n := startNATS(t)
	a, b, c := newNode(t, n, true), newNode(t, n, true), newNode(t, n, true)
	all := []*node{a, b, c}

	a.edit(func(d *users.Directory) {
		d.Monitor("alice", users.Auction{ID: "58040119", ProductID: 58040119, AddedAt: 1, Config: users.DefaultAuctionConfig})
	})
	took := within(t, 250*time.Millisecond, "monitor on A", all, func(r users.Record) bool {
		_, ok := auctionOf(r, "58040119")
		return ok
	})
	t.Logf("monitor on A everywhere after %v", took)

	b.edit(func(d *users.Directory) {
		d.UpdateAuction("alice", "58040119", func(au *users.Auction) {
			au.Config = users.AuctionConfig{MaxBid: 40, IncrementAmount: 1, Strategy: users.StrategySniping, AutoBid: true}
		})
	})
	took = within(t, 250*time.Millisecond, "config on B", all, func(r users.Record) bool {
		au, _ := auctionOf(r, "58040119")
		return au.Config.MaxBid == 40 && au.Config.AutoBid
	})
	t.Logf("config on B everywhere after %v", took)

	c.edit(func(d *users.Directory) { d.SetCookies("alice", "__session=from-c") })
	took = within(t, 250*time.Millisecond, "cookies on C", all, func(r users.Record) bool {
		return r.Cookies == "__session=from-c"
	})
	t.Logf("cookies on C everywhere after %v", took)

	// The bucket holds the cookies sealed, never in clear.
	e, err := a.store.KeyValue().Get(testCtx(t), userKey("alice"))
	if err != nil || bytes.Contains(e.Value(), []byte("from-c")) || !bytes.Contains(e.Value(), []byte("sealedCookies")) {
		t.Fatalf("stored %s, %v: cookies in clear or missing", e.Value(), err)
	}
}

// Two nodes that both loaded the user change it without seeing each
// other's change: the second save conflicts, merges and loses nothing;
// then the first node, behind, changes a config and merges again.
func TestConflictingSavesMerge(t *testing.T) {
	n := startNATS(t)
	a, b := newNode(t, n, false), newNode(t, n, false)
	a.edit(func(d *users.Directory) {
		d.Monitor("alice", users.Auction{ID: "1", ProductID: 1, AddedAt: 1, Config: users.DefaultAuctionConfig})
	})
	b.edit(func(d *users.Directory) {
		d.Monitor("alice", users.Auction{ID: "2", ProductID: 2, AddedAt: 2, Config: users.DefaultAuctionConfig})
		d.SetCookies("alice", "__session=b")
	})
	a.edit(func(d *users.Directory) {
		d.UpdateAuction("alice", "1", func(au *users.Auction) { au.Config.MaxBid = 99 })
	})
	c := newNode(t, n, false)
	rec := c.record()
	a1, ok1 := auctionOf(rec, "1")
	_, ok2 := auctionOf(rec, "2")
	if !ok1 || !ok2 || a1.Config.MaxBid != 99 || rec.Cookies != "__session=b" {
		t.Fatalf("merged record %+v: want auctions 1 (max 99) and 2, cookies from b", rec)
	}
	// A removal is merged too: b, behind, removes 2.
	b.edit(func(d *users.Directory) { d.Unmonitor("alice", "2") })
	d := newNode(t, n, false).record()
	if _, ok := auctionOf(d, "2"); ok || len(d.Auctions) != 1 {
		t.Fatalf("after b removed 2: %+v", d.Auctions)
	}
}

// Three watching nodes each add ten auctions at once, and one syncs
// cookies meanwhile: every node ends with all thirty and the cookies.
func TestConcurrentEditsLoseNothing(t *testing.T) {
	n := startNATS(t)
	nodes := []*node{newNode(t, n, true), newNode(t, n, true), newNode(t, n, true)}
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				id := fmt.Sprintf("%d%02d", i+1, j)
				nd.edit(func(d *users.Directory) {
					d.Monitor("alice", users.Auction{ID: id, ProductID: int64(1000 + 100*i + j), AddedAt: int64(j), Config: users.DefaultAuctionConfig})
				})
				if i == 2 && j == 5 {
					nd.edit(func(d *users.Directory) { d.SetCookies("alice", "__session=c") })
				}
			}
		}()
	}
	wg.Wait()
	within(t, 2*time.Second, "thirty auctions and the cookies", nodes, func(r users.Record) bool {
		return len(r.Auctions) == 30 && r.Cookies == "__session=c"
	})
	stored, err := newNode(t, n, false).store.Load(testCtx(t), "alice", testKey)
	if err != nil || len(stored.Auctions) != 30 || stored.Cookies != "__session=c" {
		t.Fatalf("stored %d auctions, cookies %q, %v", len(stored.Auctions), stored.Cookies, err)
	}
}

// A save whose record was taken just before the watch merged another
// node's change into the user loses neither: the relay's saver takes a
// record, and the watch may merge before the saver writes it. The record
// went out on the merged change's revision, without that change, and
// every node then dropped it (TestConcurrentEditsLoseNothing failed 1 run
// in 20 with an auction missing for good).
func TestASaveTakenBeforeAMergeLosesNothing(t *testing.T) {
	n := startNATS(t)
	a, b := newNode(t, n, true), newNode(t, n, true)
	a.edit(func(d *users.Directory) {
		d.Monitor("alice", users.Auction{ID: "1", ProductID: 1, AddedAt: 1, Config: users.DefaultAuctionConfig})
	})
	within(t, 5*time.Second, "a's first auction", []*node{b}, func(r users.Record) bool { return len(r.Auctions) == 1 })
	a.mu.Lock()
	a.dir.Monitor("alice", users.Auction{ID: "3", ProductID: 3, AddedAt: 3, Config: users.DefaultAuctionConfig})
	a.mu.Unlock()
	var taken atomic.Bool
	saver := users.NewSaver(a.store, users.SaverOptions{
		Snapshot: func(name string) (users.Record, bool) {
			rec := a.record()
			if taken.CompareAndSwap(false, true) {
				// b's change lands now; a's watch may merge it before
				// the saver writes what it took (it always did within
				// the wait below, when it could).
				b.edit(func(d *users.Directory) {
					d.Monitor("alice", users.Auction{ID: "2", ProductID: 2, AddedAt: 2, Config: users.DefaultAuctionConfig})
				})
				for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
					if _, ok := auctionOf(a.record(), "2"); ok {
						break
					}
				}
			}
			return rec, true
		},
		Key:   func() []byte { return testKey },
		Delay: func() time.Duration { return 0 },
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		saver.Run(ctx)
	}()
	defer func() {
		cancel()
		<-ran
	}()
	saver.MarkDirty("alice")
	all := func(r users.Record) bool { return len(r.Auctions) == 3 }
	within(t, 5*time.Second, "auctions 1, 2 and 3", []*node{a, b}, all)
	stored, err := newNode(t, n, false).store.Load(testCtx(t), "alice", testKey)
	if err != nil || !all(stored) {
		t.Fatalf("stored %+v, %v: want auctions 1, 2 and 3", stored.Auctions, err)
	}
}

// The first cluster start imports what single-node storage holds; a later
// start (the marker set) imports nothing, and never overwrites.
func TestImportOnce(t *testing.T) {
	n := startNATS(t)
	storage := memstorage.NewListing()
	single := users.NewStorageStore(storage, users.StorageOptions{})
	ctx := testCtx(t)
	in := users.Record{Cookies: "__session=old", Auctions: []users.Auction{{ID: "7", ProductID: 7, AddedAt: 1, Config: users.DefaultAuctionConfig}}}
	if err := single.Save(ctx, "alice", in, testKey); err != nil {
		t.Fatal(err)
	}
	names, err := StoredNames(ctx, storage)
	if err != nil || len(names) != 1 || names[0] != "alice" {
		t.Fatalf("stored names %v, %v", names, err)
	}
	a := newNode(t, n, false)
	if got, err := a.store.ImportOnce(ctx, single, nil, names, testKey); err != nil || got != 1 {
		t.Fatalf("first import: %d, %v", got, err)
	}
	rec, err := a.store.Load(ctx, "alice", testKey)
	if err != nil || rec.Cookies != "__session=old" || len(rec.Auctions) != 1 {
		t.Fatalf("imported %+v, %v", rec, err)
	}
	// Single-node storage changes later; the cluster's record stays.
	if err := single.Save(ctx, "alice", users.Record{Cookies: "__session=later"}, testKey); err != nil {
		t.Fatal(err)
	}
	b := newNode(t, n, false)
	if got, err := b.store.ImportOnce(ctx, single, nil, names, testKey); err != nil || got != 0 {
		t.Fatalf("second import: %d, %v", got, err)
	}
	if rec, _ := b.store.Load(ctx, "alice", testKey); rec.Cookies != "__session=old" {
		t.Fatalf("after the second start: cookies %q", rec.Cookies)
	}
}

func TestOpenWithoutKeyRefused(t *testing.T) {
	n := startNATS(t)
	_, js := n.connect()
	if _, err := Open(testCtx(t), js, Options{Prefix: "t"}); err == nil {
		t.Fatal("a store without a cookie key")
	}
}

func TestLedgerCompareAndSet(t *testing.T) {
	n := startNATS(t)
	_, js := n.connect()
	s, err := Open(testCtx(t), js, Options{Prefix: "t", Key: func() []byte { return testKey }})
	if err != nil {
		t.Fatal(err)
	}
	l := NewLedger(s.KeyValue())
	ctx := testCtx(t)
	r1, err := l.CommitBids(ctx, "alice", 5, users.LotBids{Tried: []int{10}, Intent: &users.BidIntent{Amount: 10, Node: "a"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CommitBids(ctx, "alice", 5, users.LotBids{Tried: []int{11}}, 0); !errors.Is(err, users.ErrBidConflict) {
		t.Fatalf("a second create: %v, want a conflict", err)
	}
	r2, err := l.CommitBids(ctx, "alice", 5, users.LotBids{Tried: []int{10}}, r1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CommitBids(ctx, "alice", 5, users.LotBids{Tried: []int{12}}, r1); !errors.Is(err, users.ErrBidConflict) {
		t.Fatalf("a write at a stale revision: %v, want a conflict", err)
	}
	rec, rev, err := l.LoadBids(ctx, "alice", 5)
	if err != nil || rev != r2 || rec.Intent != nil || len(rec.Tried) != 1 || rec.Tried[0] != 10 {
		t.Fatalf("loaded %+v at %d (want %d), %v", rec, rev, r2, err)
	}
}
