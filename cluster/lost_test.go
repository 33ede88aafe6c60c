package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nellis-edge/gateway/internal/natstest"
)

// A node cut off from NATS is lost once a lease has passed, not before,
// and found again as soon as it reconnects.
func TestLostAfterALeaseWithoutNATS(t *testing.T) {
	n := startNATS(t)
	proxy := n.NewProxy()
	cfg := n.config("cut")
	cfg.Servers = []string{proxy.URL()}
	b := n.busWith(cfg)
	if b.Lost() {
		t.Fatal("lost while connected")
	}
	proxy.Cut()
	cut := time.Now()
	waitFor(t, 3*time.Second, b.Lost)
	if waited := time.Since(cut); waited < time.Second {
		t.Fatalf("lost %v after the cut, before a lease (1s) had passed", waited)
	}
	proxy.Restore()
	restored := time.Now()
	waitFor(t, 3*time.Second, func() bool { return !b.Lost() })
	t.Logf("lost %v after the cut; found %v after the restore", time.Since(cut).Round(time.Millisecond), time.Since(restored).Round(time.Millisecond))
	if _, err := b.LiveNodes(testCtx(t)); err != nil {
		t.Fatalf("listing nodes after the restore: %v", err)
	}
}

// A node whose connection stays up while JetStream does not answer is
// lost a full lease after the last acknowledged write: its lease stopped
// being valid before, and another node claims the product only after it
// did. Once JetStream answers again it is found again. The proxy sends the
// node to a server without JetStream: every call gets "no responders"
// at once; or one where something takes the JetStream requests and never
// answers, so that every write times out, as on a server on the minority
// side of a partition whose stream leader lost its quorum.
func TestLostAfterALeaseWithoutJetStream(t *testing.T) {
	t.Run("no responders", func(t *testing.T) { testLostWithoutJetStream(t, false) })
	t.Run("no answer", func(t *testing.T) { testLostWithoutJetStream(t, true) })
}

func testLostWithoutJetStream(t *testing.T, silent bool) {
	n := startNATS(t)
	core := natstest.StartCore(t)
	if silent {
		nc, err := nats.Connect(core.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		for _, subject := range []string{"$JS.API.>", "$KV.>", "nellis.>"} {
			if _, err := nc.Subscribe(subject, func(*nats.Msg) {}); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	proxy := n.NewProxy()
	cfg := n.config("minority")
	cfg.Servers = []string{proxy.URL()}
	b := n.busWith(cfg)
	other := n.bus("majority")
	const product = 41
	l := claim(t, b, product)
	k := NewKeeper(b, nil)
	defer k.Close(testCtx(t))
	k.Add(l)
	// A few renewals in, so that the last answer is a renewal or a put.
	time.Sleep(500 * time.Millisecond)
	if b.Lost() {
		t.Fatal("lost while JetStream answers")
	}

	proxy.Redirect(core)
	cut := time.Now()
	var invalidAt, claimedAt, lostAt time.Time
	for lostAt.IsZero() || claimedAt.IsZero() {
		now := time.Now()
		if invalidAt.IsZero() && !l.Valid() {
			invalidAt = now
		}
		if lostAt.IsZero() && b.Lost() {
			lostAt = now
			if l.Valid() {
				t.Fatal("lost while its lease is still valid")
			}
		}
		if claimedAt.IsZero() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			if _, err := other.Claim(ctx, product); err == nil {
				claimedAt = time.Now()
				if l.Valid() {
					t.Fatal("another node claimed the product while its holder's lease is valid: two owners")
				}
			}
			cancel()
		}
		if now.Sub(cut) > time.Duration(cfg.Lease)+time.Second {
			t.Fatalf("%v after JetStream went: lost %v, claimed elsewhere %v", now.Sub(cut), !lostAt.IsZero(), !claimedAt.IsZero())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if invalidAt.IsZero() || invalidAt.After(claimedAt) {
		t.Fatal("the holder's lease was still valid when another node claimed the product")
	}
	if lostAt.Sub(cut) < time.Duration(cfg.Lease)-b.RenewEvery() {
		t.Fatalf("lost %v after JetStream went: before a lease without an answer could have passed", lostAt.Sub(cut))
	}
	t.Logf("after JetStream went: lease invalid %v, lost %v, claimed elsewhere %v", invalidAt.Sub(cut).Round(time.Millisecond),
		lostAt.Sub(cut).Round(time.Millisecond), claimedAt.Sub(cut).Round(time.Millisecond))

	proxy.Redirect(n.Server)
	back := time.Now()
	waitFor(t, 3*time.Second, func() bool { return !b.Lost() })
	t.Logf("found %v after JetStream came back", time.Since(back).Round(time.Millisecond))
	if _, err := b.LiveNodes(testCtx(t)); err != nil {
		t.Fatalf("listing nodes after JetStream came back: %v", err)
	}
}

// A node whose JetStream answers late (each round trip slower than a
// renewal period, within a lease, as on a loaded machine) is not lost:
// a slow answer is an answer.
func TestNotLostWhileJetStreamAnswersSlowly(t *testing.T) {
	n := startNATS(t)
	proxy := n.NewProxy()
	cfg := n.config("slow")
	cfg.Servers = []string{proxy.URL()}
	b := n.busWith(cfg)
	rtt := b.RenewEvery() + 150*time.Millisecond
	proxy.Delay(rtt / 2)
	start := time.Now()
	for time.Since(start) < 3*time.Duration(cfg.Lease) {
		if b.Lost() {
			t.Fatalf("lost %v into round trips of %v, under a lease (%v)", time.Since(start), rtt, time.Duration(cfg.Lease))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sent := time.Now()
	if _, err := b.LiveNodes(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(sent); took < rtt {
		t.Fatalf("a round trip took %v, want the proxy's delay (%v)", took, rtt)
	}
}

// stallClock is the real clock plus the time a stalled process missed.
type stallClock struct{ missed atomic.Int64 }

func (c *stallClock) now() time.Time { return time.Now().Add(time.Duration(c.missed.Load())) }

// stall makes d pass at once, as it does for a process stopped for d.
func (c *stallClock) stall(d time.Duration) { c.missed.Add(int64(d)) }

// A node whose process stalled past a lease (a long GC pause, a frozen
// VM: nothing ran while its clock moved on) is not lost on waking: it
// sent no write meanwhile, so none went unanswered. It has a lease from
// waking for JetStream to answer, and is found lost only if JetStream
// really is gone: here, cut off while it was stalled.
func TestNotLostAfterAStall(t *testing.T) {
	n := startNATS(t)
	proxy := n.NewProxy()
	cfg := n.config("stalled")
	cfg.Servers = []string{proxy.URL()}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock := new(stallClock)
	b.now = clock.now
	if err := b.Connect(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	lease := time.Duration(cfg.Lease)
	time.Sleep(lease / 2)

	clock.stall(3 * lease)
	woke := time.Now()
	for time.Since(woke) < 2*lease {
		if b.Lost() {
			t.Fatalf("lost %v after waking from a stall of %v, JetStream answering", time.Since(woke), 3*lease)
		}
		time.Sleep(10 * time.Millisecond)
	}

	proxy.Cut()
	clock.stall(3 * lease)
	woke = time.Now()
	waitFor(t, 3*lease, b.Lost)
	t.Logf("cut off during a stall: lost %v after waking", time.Since(woke).Round(time.Millisecond))
}
