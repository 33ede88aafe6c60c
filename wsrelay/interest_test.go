package wsrelay

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/nellis-edge/gateway/wsconn"
)

// A start and a stop of the same auction from two sockets of one user at
// once never leave the relay subscribed to a product nobody watches.
func TestConcurrentStartAndStopNeverLeakAFeedSubscription(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	u := f.relay.users["alice"]
	// Two sockets of alice; closed ones, since the replies are not read.
	a, b := &conn{r: f.relay, s: wsconn.Ended()}, &conn{r: f.relay, s: wsconn.Ended()}
	start := &ClientMessage{Type: TypeStartMonitoring, AuctionID: "100", RequestID: json.RawMessage(`"s"`)}
	stop := &ClientMessage{Type: TypeStopMonitoring, AuctionID: "100", RequestID: json.RawMessage(`"t"`)}
	subscribe := &ClientMessage{Type: TypeSubscribe, AuctionID: "100"}
	unsubscribe := &ClientMessage{Type: TypeUnsubscribe, AuctionID: "100"}
	for i := 0; i < 2000; i++ {
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); a.handleStartMonitoring(u, start) }()
		go func() { defer wg.Done(); b.handleStopMonitoring(u, stop) }()
		go func() { defer wg.Done(); b.handleSubscribe(subscribe); b.handleUnsubscribe(unsubscribe) }()
		wg.Wait()
		a.handleStopMonitoring(u, stop)
		if n := f.feeds.subscribers(100); n != 0 {
			t.Fatalf("round %d: %d feed subscriptions after the last stop, want 0", i, n)
		}
	}
	f.relay.interestMu.Lock()
	n := len(f.relay.interest)
	f.relay.interestMu.Unlock()
	if n != 0 {
		t.Errorf("%d products still of interest, want 0", n)
	}
}
