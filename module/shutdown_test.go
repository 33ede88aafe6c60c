package module

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestFaultGracefulShutdown: stopping the gateway (a config without the
// app) closes every client with 1001, going away, and the upstream stream.
func TestFaultGracefulShutdown(t *testing.T) {
	r := newRig(t, "")
	other := watch(t, r.id)
	other.await(t, float64(lotNow(t, r.sim, r.id).CurrentBid), time.Now().Add(2*time.Second))
	r.tester.InitServer(noGatewayConfig, "caddyfile")
	for i, w := range []*watcher{r.w, other} {
		err := w.awaitEnd(t, 3*time.Second)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("client %d: the socket ended with %v, want close code 1001", i, err)
		}
	}
	eventually(t, 3*time.Second, "the upstream stream to close", func() bool {
		return r.stats(t).StreamsOpen == 0
	})
}
