package clusterusers

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/nellis-edge/gateway/users"
)

var errHolderFull = errors.New("holder: remote users at their bound")

// holder stands for the relay: it loads a user's record from the store,
// as the relay does, and keeps the products of their auctions.
type holder struct {
	store *Store

	mu       sync.Mutex
	held     map[string][]int64
	attempts []string
}

func (h *holder) LoadRemoteUser(ctx context.Context, name string, limit int) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts = append(h.attempts, name)
	switch {
	case h.held[name] != nil:
		return false, nil
	case len(h.held) >= limit:
		return false, errHolderFull
	}
	rec, err := h.store.Load(ctx, name, testKey)
	if err != nil || len(rec.Auctions) == 0 {
		return false, err
	}
	var products []int64
	for _, a := range rec.Auctions {
		products = append(products, a.ProductID)
	}
	h.held[name] = products
	return true, nil
}

func (h *holder) ReleaseRemoteUsers(keep func(int64) bool) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for name, products := range h.held {
		if !slices.ContainsFunc(products, keep) {
			delete(h.held, name)
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func (h *holder) Loaded(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held[name] != nil
}

func (h *holder) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.held))
}

func (h *holder) tried(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.attempts, name)
}

// ownedSet is the hub's Owns, set by the test.
type ownedSet struct {
	mu  sync.Mutex
	ids map[int64]bool
}

func (o *ownedSet) owns(id int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ids[id]
}

func (o *ownedSet) set(id int64, owned bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ids[id] = owned
}

// loaderRig is a node (a) whose loader loads the strangers another node
// (b) saves, through a holder standing for a's relay.
type loaderRig struct {
	t      *testing.T
	ctx    context.Context
	b      *Store
	a      *Store
	holder *holder
	owned  *ownedSet
	loader *RemoteLoader
}

func newLoaderRig(t *testing.T, limit int, log *zap.Logger, owned ...int64) *loaderRig {
	n := startNATS(t)
	ctx := testCtx(t)
	_, jsB := n.connect()
	b, err := Open(ctx, jsB, Options{Prefix: "t", Replicas: 1, Key: func() []byte { return testKey }})
	if err != nil {
		t.Fatal(err)
	}
	r := &loaderRig{t: t, ctx: ctx, b: b, owned: &ownedSet{ids: map[int64]bool{}}}
	for _, id := range owned {
		r.owned.set(id, true)
	}
	r.holder = &holder{held: map[string][]int64{}}
	r.loader, err = NewRemoteLoader(LoaderOptions{
		Holder: r.holder, Owns: r.owned.owns, Limit: limit, Full: errHolderFull,
		Logger: func() *zap.Logger { return log },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, jsA := n.connect()
	r.a, err = Open(ctx, jsA, Options{Prefix: "t", Replicas: 1, Key: func() []byte { return testKey },
		Changed: func(string, func(users.Record) users.Record) {}, Stranger: r.loader.Stranger})
	if err != nil {
		t.Fatal(err)
	}
	r.holder.store = r.a
	r.loader.Start(r.a)
	t.Cleanup(func() {
		r.loader.Close() // before the store it loads from
		r.a.Close()
	})
	if err := r.a.Watch(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// save stores, from node b, name's record with an auction on each product.
func (r *loaderRig) save(name string, products ...int64) {
	r.t.Helper()
	rec := users.Record{Cookies: "sim_user=" + name}
	for _, p := range products {
		rec.Auctions = append(rec.Auctions, users.Auction{ID: strconv.FormatInt(p, 10), ProductID: p, AddedAt: p, Config: users.DefaultAuctionConfig})
	}
	if err := r.b.Save(r.ctx, name, rec, testKey); err != nil {
		r.t.Fatal(err)
	}
}

// held waits until the holder holds exactly want.
func (r *loaderRig) held(what string, want ...string) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(r.holder.names(), want) {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: held %v, want %v", what, r.holder.names(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// strangers waits until a's index holds exactly want on product p.
func (r *loaderRig) strangers(what string, p int64, want ...string) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(r.a.Strangers(p), want) {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: strangers on %d %v, want %v", what, p, r.a.Strangers(p), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The owner of lot 100 loads a stranger with an auction on it, and not
// one whose only auction is on lot 200, which it does not own; owning 200
// later loads that one from the index. Losing a lot lets go of the users
// who have no other lot it owns, and indexes them as strangers again.
func TestRemoteLoaderLoadsStrangersOfOwnedLotsAndLetsThemGo(t *testing.T) {
	r := newLoaderRig(t, 100, zap.NewNop(), 100)
	r.save("ivy", 100)
	r.save("joe", 200)
	r.save("lee", 100, 200)
	r.held("strangers on the owned lot 100", "ivy", "lee")
	// The watch told of joe before lee, so the loader has seen him too.
	if r.holder.tried("joe") {
		t.Fatal("joe, with an auction only on lot 200, which this node does not own, was loaded")
	}
	r.strangers("joe left as a stranger", 200, "joe")

	r.owned.set(200, true)
	r.loader.Owned(200, true)
	r.held("lot 200 owned", "ivy", "joe", "lee")
	r.strangers("everyone loaded", 200)

	r.owned.set(200, false)
	r.loader.Owned(200, false)
	r.held("lot 200 lost: joe owns nothing here, lee still has lot 100", "ivy", "lee")
	r.strangers("joe let go is a stranger again", 200, "joe")

	r.owned.set(100, false)
	r.loader.Owned(100, false)
	r.held("lot 100 lost too")
	r.strangers("all let go", 100, "ivy", "lee")
}

// At remote_users the loader logs the bound once, however many users it
// refuses, and again only after it loaded a user under the bound.
func TestRemoteLoaderLogsTheBoundOnceUntilUnderIt(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	r := newLoaderRig(t, 1, zap.New(core), 100, 200)
	bound := func() int { return logs.FilterMessageSnippet("remote_users reached").Len() }
	r.save("ivy", 100)
	r.held("the first stranger", "ivy")
	r.save("joe", 200)
	r.save("kim", 200)
	deadline := time.Now().Add(5 * time.Second)
	for !r.holder.tried("joe") || !r.holder.tried("kim") {
		if time.Now().After(deadline) {
			t.Fatal("joe and kim not both tried")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := bound(); n != 1 {
		t.Fatalf("bound logged %d times for two users refused, want once", n)
	}
	r.strangers("the refused stay strangers", 200, "joe", "kim")

	r.owned.set(100, false)
	r.loader.Owned(100, false)
	r.held("ivy let go: under the bound")
	// Both strangers of lot 200 are tried again: one is loaded, and the
	// other, at the bound again, is logged again.
	r.loader.Owned(200, true)
	deadline = time.Now().Add(5 * time.Second)
	for bound() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("bound logged %d times after a user was loaded under it and another refused, want 2 (held %v)", bound(), r.holder.names())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if held := r.holder.names(); len(held) != 1 || !slices.Contains([]string{"joe", "kim"}, held[0]) {
		t.Fatalf("held %v, want joe or kim", held)
	}
	if e := logs.FilterMessageSnippet("remote_users reached").All()[1]; e.ContextMap()["remote_users"] != int64(1) {
		t.Errorf("the bound's log says %v, want remote_users 1", e.ContextMap())
	}
}

// Close ends the loader's goroutine, started or not, and a loader closed
// before it started never starts one.
func TestRemoteLoaderCloseEndsItsGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	opts := LoaderOptions{Holder: &holder{held: map[string][]int64{}}, Owns: func(int64) bool { return true }, Limit: 1}
	x, err := NewRemoteLoader(opts)
	if err != nil {
		t.Fatal(err)
	}
	x.start(emptyIndex{})
	x.Owned(5, false) // wakes it: a sweep with nobody to let go
	x.Close()
	select {
	case <-x.done:
	default:
		t.Fatal("Close returned before the goroutine ended")
	}

	y, err := NewRemoteLoader(opts)
	if err != nil {
		t.Fatal(err)
	}
	y.Close()
	y.start(emptyIndex{})
	y.Close()
	if y.started {
		t.Fatal("a loader closed before Start started")
	}
	if _, err := NewRemoteLoader(LoaderOptions{Holder: opts.Holder, Owns: opts.Owns}); err == nil {
		t.Fatal("a loader without a bound was made")
	}
}

type emptyIndex struct{}

func (emptyIndex) Strangers(int64) []string { return nil }
func (emptyIndex) Unload(string)            {}
