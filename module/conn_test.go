package module

import (
	"strings"
	"testing"
)

// TestIdleSocketsParkBehindCaddysWrapper: a server limited to HTTP/1
// wraps each connection in Caddy's h2c-preface check; caddyPlainConn looks
// through it, so idle sockets there are parked without a goroutine too,
// and still answer.
func TestIdleSocketsParkBehindCaddysWrapper(t *testing.T) {
	_, simURL := newSimulator(t)
	cfg := strings.Replace(gatewayConfig(simURL, t.TempDir(), ""), "grace_period 1ns", "grace_period 1ns\n\tservers {\n\t\tprotocols h1\n\t}", 1)
	loadCaddy(t, cfg)
	var exts []*extension
	for range 2 {
		ext, _, err := dialExtension(t, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		exts = append(exts, ext)
	}
	expectParkedThroughPing(t, exts, "")
}
