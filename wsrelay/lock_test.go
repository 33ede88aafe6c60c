package wsrelay

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

// TestNoSocketIsWrittenUnderTheRelayLock: a fan-out (deliver) and a state
// pushed on the user's request (pushState) write to the sockets after
// releasing Relay.mu, so another user's sign-in or request never waits
// for their writes. The hook runs on the goroutine that has just written
// the frame; the relay's lock must be free there, or become free while
// the hook waits.
func TestNoSocketIsWrittenUnderTheRelayLock(t *testing.T) {
	cfg := testConfig()
	// Nothing else of the relay's takes its lock meanwhile.
	hour := settings.Duration(time.Hour)
	cfg.SaveDelay = time.Hour
	cfg.AuthTimeout, cfg.MessageTimeout = hour, hour
	cfg.PingInterval, cfg.HeartbeatInterval = hour, settings.Duration(20*time.Second)
	f := newFixture(t, cfg, Options{})
	c := f.login(tokenAlice)
	startMonitoring(c, "8", 10)
	var written, underLock atomic.Int32
	f.relay.SetHooks(Hooks{MessageOut: func(kind string) {
		if kind != "auctionState" {
			return
		}
		written.Add(1)
		// Another goroutine may hold the lock for a moment (a push to the
		// user's other sockets reads under it); a lock held by the writer
		// itself stays held for as long as this hook runs.
		for deadline := time.Now().Add(200 * time.Millisecond); ; time.Sleep(time.Millisecond) {
			if f.relay.mu.TryLock() {
				f.relay.mu.Unlock()
				return
			}
			if time.Now().After(deadline) {
				underLock.Add(1)
				return
			}
		}
	}})

	f.feeds.publish(newChange(t, product(8, 11), "e", 1)) // deliver
	c.expectType("auctionState")
	c.send(map[string]any{"type": "updateConfig", "auctionId": "8", "requestId": "u", "config": map[string]any{"maxBid": 20}})
	c.expectType("response")
	c.expectType("auctionState") // pushState
	// The hook runs after the write, so perhaps after the client read it.
	waitFor(t, "both states' hooks", func() bool { return written.Load() == 2 })
	if underLock.Load() != 0 {
		t.Errorf("%d of %d states written with the relay's lock held", underLock.Load(), written.Load())
	}
}
