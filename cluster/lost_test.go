package cluster

import (
	"testing"
	"time"
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
