package wsrelay

import (
	"testing"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

// TestSilentClientIsDropped: a client that answers no ping is closed after
// two ping intervals, whether its reader is parked or waits in gorilla.
func TestSilentClientIsDropped(t *testing.T) {
	closed := make(chan int, 1)
	cfg := testConfig()
	cfg.PingInterval = settings.Duration(50 * time.Millisecond)
	f := newFixture(t, cfg, Options{Hooks: Hooks{ConnClosed: func(code int) { closed <- code }}})
	f.dial(nil) // never reads, so never answers a ping
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("a silent client was never dropped")
	}
	if n := f.relay.Stats().Connections; n != 0 {
		t.Errorf("%d connections left", n)
	}
}
