package clusterusers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nellis-edge/gateway/users"
)

// A manual bid on a lot another node owns reaches it, cookies opened
// there; with no owner, or an owner that does not answer, it is
// ErrNoOwner.
func TestForwardReachesTheOwner(t *testing.T) {
	n := startNATS(t)
	ctx := testCtx(t)
	ncA, jsA := n.connect()
	ncB, jsB := n.connect()
	owners, err := jsA.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "t_owners"})
	if err != nil {
		t.Fatal(err)
	}
	key := func() []byte { return testKey }
	a, err := NewForwarder(ctx, ncA, jsA, ForwarderOptions{Prefix: "t", Node: "a", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewForwarder(ctx, ncB, jsB, ForwarderOptions{Prefix: "t", Node: "b", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	var placed []users.Bid
	err = b.Serve(func(_ context.Context, bid users.Bid) (users.BidResult, error) {
		mu.Lock()
		defer mu.Unlock()
		placed = append(placed, bid)
		return users.BidResult{Success: true, Data: []byte(`{"accepted":true}`)}, nil
	}, func() time.Duration { return time.Second })
	if err != nil {
		t.Fatal(err)
	}
	bid := users.Bid{User: "alice", AuctionID: "42", ProductID: 42, Amount: 17, Cookies: "__session=secret"}

	if _, err := a.Forward(ctx, bid); !errors.Is(err, users.ErrNoOwner) {
		t.Fatalf("no lease: %v, want ErrNoOwner", err)
	}
	if _, err := owners.Put(ctx, "owner.42", []byte("b")); err != nil {
		t.Fatal(err)
	}
	res, err := a.Forward(ctx, bid)
	if err != nil || !res.Success || string(res.Data) != `{"accepted":true}` {
		t.Fatalf("through b: %+v, %v", res, err)
	}
	mu.Lock()
	if len(placed) != 1 || placed[0] != bid {
		t.Fatalf("b placed %+v, want %+v", placed, bid)
	}
	mu.Unlock()
	if _, err := owners.Put(ctx, "owner.42", []byte("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Forward(ctx, bid); !errors.Is(err, users.ErrNoOwner) {
		t.Fatalf("an owner that is gone: %v, want ErrNoOwner", err)
	}
}

// The bid travels with its cookies sealed: what crosses NATS never holds
// them in clear.
func TestForwardedCookiesTravelSealed(t *testing.T) {
	n := startNATS(t)
	ctx := testCtx(t)
	nc, js := n.connect()
	owners, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "t_owners"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owners.Put(ctx, "owner.42", []byte("b")); err != nil {
		t.Fatal(err)
	}
	spy, err := nc.SubscribeSync("t.bid.b")
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewForwarder(ctx, nc, js, ForwarderOptions{Prefix: "t", Node: "a", Key: func() []byte { return testKey }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = a.Forward(fctx, users.Bid{User: "alice", ProductID: 42, Amount: 3, Cookies: "__session=secret"})
	}()
	m, err := spy.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(m.Data); !strings.Contains(s, "sealedCookies") || strings.Contains(s, "secret") {
		t.Fatalf("on the wire: %s", s)
	}
	<-done
}
