package main

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nellis-edge/gateway/bench/benchcert"
)

// A TLS scenario's site is https:// with the run's certificate files and
// no :80 redirect listener; a plain one is http:// with no tls line. A
// shared user's sockets fit under max_sockets_per_user.
func TestCaddyfileText(t *testing.T) {
	files := benchcert.Files{Cert: "/tmp/run dir/cert.pem", Key: "/tmp/run dir/key.pem"}
	tlsText := caddyfileText("/d", gatewayOptions{simURL: "http://sim", tls: &files, socketsPerUser: 10_000}, 4443, "off")
	for _, want := range []string{
		"https://127.0.0.1:4443 {", `tls "/tmp/run dir/cert.pem" "/tmp/run dir/key.pem"`, "auto_https disable_redirects",
		"max_sockets_per_user 10000", "sse_endpoint http://sim", "storage file_system /d/storage",
	} {
		if !strings.Contains(tlsText, want) {
			t.Errorf("TLS Caddyfile lacks %q:\n%s", want, tlsText)
		}
	}
	plain := caddyfileText("/d", gatewayOptions{simURL: "http://sim"}, 8080, "127.0.0.1:2020")
	for _, want := range []string{"http://127.0.0.1:8080 {", "admin 127.0.0.1:2020", "max_sockets_per_user 20", "auth_failures_per_minute 1000000"} {
		if !strings.Contains(plain, want) {
			t.Errorf("plain Caddyfile lacks %q:\n%s", want, plain)
		}
	}
	if strings.Contains(plain, "tls ") {
		t.Errorf("plain Caddyfile has a tls line:\n%s", plain)
	}
}

// The health check of a TLS gateway trusts the run's certificate, and only
// it.
func TestTrustingClient(t *testing.T) {
	files, err := benchcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	c, err := trustingClient(&files)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(srv.URL + "/health/live")
	if err != nil {
		t.Fatalf("trusting the run's certificate: %v", err)
	}
	resp.Body.Close()
	plain, _ := trustingClient(nil)
	if resp, err := plain.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("a client with the system's roots trusted the run's certificate")
	}
}
