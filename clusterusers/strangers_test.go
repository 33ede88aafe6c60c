package clusterusers

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/users"
)

// A user another node wrote and this one never loaded (a signed token's,
// signed in elsewhere) is indexed by the products of their auctions: from
// the records stored before the watch started and from each change since,
// told to Stranger as it comes; loading them takes them out of the index
// (the watch applies their changes then), Unload puts them back, and a
// removed auction or record leaves the index.
func TestStrangersAreIndexedByTheirLots(t *testing.T) {
	n := startNATS(t)
	ctx := testCtx(t)
	_, jsB := n.connect()
	b, err := Open(ctx, jsB, Options{Prefix: "t", Replicas: 1, Key: func() []byte { return testKey }})
	if err != nil {
		t.Fatal(err)
	}
	auction := func(p int64) users.Auction {
		return users.Auction{ID: strconv.FormatInt(p, 10), ProductID: p, AddedAt: p, Config: users.DefaultAuctionConfig}
	}
	save := func(name string, products ...int64) {
		t.Helper()
		rec := users.Record{Cookies: "sim_user=" + name}
		for _, p := range products {
			rec.Auctions = append(rec.Auctions, auction(p))
		}
		if err := b.Save(ctx, name, rec, testKey); err != nil {
			t.Fatal(err)
		}
	}
	save("ivy", 100, 200)

	var mu sync.Mutex
	told := map[string][]int64{}
	_, jsA := n.connect()
	a, err := Open(ctx, jsA, Options{Prefix: "t", Replicas: 1, Key: func() []byte { return testKey },
		Changed: func(string, func(users.Record) users.Record) {},
		Stranger: func(name string, products []int64) {
			mu.Lock()
			told[name] = products
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.Watch(context.Background()); err != nil {
		t.Fatal(err)
	}
	indexed := func(what string, p int64, want ...string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for !slices.Equal(a.Strangers(p), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: strangers on %d %v, want %v", what, p, a.Strangers(p), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	indexed("stored before the watch", 100, "ivy")
	indexed("stored before the watch", 200, "ivy")
	mu.Lock()
	if !slices.Equal(told["ivy"], []int64{100, 200}) {
		t.Errorf("Stranger told of ivy's lots %v, want [100 200]", told["ivy"])
	}
	mu.Unlock()

	save("joe", 200)
	indexed("a change since", 200, "ivy", "joe")
	save("ivy", 200) // ivy left 100
	indexed("an auction removed", 100)

	if _, err := a.Load(ctx, "ivy", testKey); err != nil {
		t.Fatal(err)
	}
	indexed("ivy loaded here", 200, "joe")
	a.Unload("ivy")
	indexed("ivy let go", 200, "ivy", "joe")

	if err := b.Delete(ctx, "joe"); err != nil {
		t.Fatal(err)
	}
	indexed("joe's record removed", 200, "ivy")
	mu.Lock()
	if got, ok := told["joe"]; !ok || len(got) != 0 {
		t.Errorf("Stranger told of joe's removal with %v (told %v), want no lots", got, ok)
	}
	mu.Unlock()
}
