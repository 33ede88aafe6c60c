package wsrelay

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
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

// joiningFeeds is a product's feed that has not read its past yet, as a
// new cluster feed's: State and AwaitReady wait for ready (at most a
// hub's 2 s), and the feed delivers the past before it is ready.
type joiningFeeds struct {
	*fakeFeeds
	ready   atomic.Pointer[chan struct{}]
	waiting chan struct{} // told once something waits for ready
}

func (j *joiningFeeds) await() {
	select {
	case j.waiting <- struct{}{}:
	default:
	}
	select {
	case <-*j.ready.Load():
	case <-time.After(2 * time.Second):
	}
}

func (j *joiningFeeds) AwaitReady(int64) { j.await() }

func (j *joiningFeeds) State(productID int64) (*hub.Change, bool) {
	j.await()
	return j.fakeFeeds.State(productID)
}

// A state pushed while the product's feed is still handing its past to
// the relay comes at once: the push waits for the feed before it takes
// the auction's send lock, which the feed's delivery needs. (Waiting
// under it, the push held the delivery, and the delivery the feed's
// readiness, for the hub's whole 2 s: a user's config change reached
// their sockets on another cluster node 2 s late.)
func TestAPushWaitsForAJoiningFeedOutsideTheSendLock(t *testing.T) {
	ready := make(chan struct{})
	close(ready)
	feeds := &joiningFeeds{fakeFeeds: newFakeFeeds(), waiting: make(chan struct{}, 1)}
	feeds.ready.Store(&ready)
	f := newFixture(t, testConfig(), Options{Feeds: feeds})
	c := f.login(tokenAlice)
	startMonitoring(c, "8", 10)

	select {
	case <-feeds.waiting: // the sign-in's and startMonitoring's asks
	default:
	}
	joining := make(chan struct{}) // a new feed joins (its reads follow)
	feeds.ready.Store(&joining)
	delivered := make(chan time.Duration, 1)
	go func() {
		<-feeds.waiting // the push asks for the state
		start := time.Now()
		feeds.publish(newChange(t, product(8, 12), "e", 1)) // the past, delivered
		close(joining)
		delivered <- time.Since(start)
	}()
	sent := time.Now()
	c.send(map[string]any{"type": "updateConfig", "auctionId": "8", "requestId": "u", "config": map[string]any{"maxBid": 20}})
	// The feed's delivery of the past may come before the answer.
	for answered, pushed := false, false; !answered || !pushed; {
		m := c.read()
		a, _ := m["auction"].(map[string]any)
		cfg, _ := a["config"].(map[string]any)
		answered = answered || m["type"] == "response"
		pushed = pushed || m["type"] == "auctionState" && cfg["maxBid"] == 20.0
	}
	if took := time.Since(sent); took > time.Second {
		t.Errorf("the pushed state came %v after the change, want at once", took)
	}
	select {
	case took := <-delivered:
		if took > time.Second {
			t.Errorf("the feed's delivery waited %v for the push", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the feed's delivery never returned")
	}
}
