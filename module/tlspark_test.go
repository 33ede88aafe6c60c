package module

import (
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestIdleTLSSocketsParkBehindCaddy: behind TLS that Caddy terminates (the
// extension's wss://), idle sockets are parked without a goroutine like
// plain ones, wake for a request, answer it, and park again.
func TestIdleTLSSocketsParkBehindCaddy(t *testing.T) {
	_, simURL := newSimulator(t)
	cfg := gatewayConfig(simURL, t.TempDir(), "")
	cfg = strings.Replace(cfg, "grace_period 1ns", "grace_period 1ns\n\tskip_install_trust\n\tauto_https disable_redirects\n\thttps_port 9443", 1)
	cfg += `
https://localhost:9443 {
	bind 127.0.0.1
	tls internal
	nellis_ws /ws {
		allowed_origins ` + testOrigin + `
	}
}
`
	loadCaddy(t, cfg)
	dialer := websocket.Dialer{
		TLSClientConfig: &tls.Config{ServerName: "localhost", InsecureSkipVerify: true},
		// The site is localhost's, on 127.0.0.1 (bind), whatever localhost resolves to.
		NetDial: func(string, string) (net.Conn, error) { return net.Dial("tcp", "127.0.0.1:9443") },
	}
	h := http.Header{}
	h.Set("Origin", testOrigin)
	var exts []*extension
	for range 2 {
		var conn *websocket.Conn
		eventually(t, 15*time.Second, "a wss:// socket (Caddy's internal CA may take a moment)", func() bool {
			c, _, err := dialer.Dial("wss://localhost:9443/ws", h)
			conn = c
			return err == nil
		})
		t.Cleanup(func() { conn.Close() })
		ext := &extension{t: t, conn: conn}
		ext.next("connected", 5*time.Second, nil)
		exts = append(exts, ext)
	}
	expectParkedThroughPing(t, exts, "TLS ")
}
