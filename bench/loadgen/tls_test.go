package loadgen

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// (One product: the fake gateway holds a socket monitoring two until the
// schedule comes, and these tests send none.)

// A wss:// load generator trusts the certificate file it is given, and only
// it: against the same TLS server, the system's roots refuse the handshake.
func TestRunOverTLSTrustsTheGivenCertificate(t *testing.T) {
	g := &fakeGateway{secret: "s3cret"}
	srv := httptest.NewTLSServer(g)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "cert.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, block, 0o600); err != nil {
		t.Fatal(err)
	}
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/ws"

	inW, _, done, ready := startRunWith(t, Options{URL: url, CAFile: ca, Secret: "s3cret", Clients: 3, Products: []int64{7}})
	if ready.Connected != 3 || ready.Failed != 0 {
		t.Fatalf("with -ca: ready = %+v, want 3 connected", ready)
	}
	inW.Close()
	<-done

	inW, _, done, ready = startRunWith(t, Options{URL: url, Secret: "s3cret", Clients: 2, Products: []int64{7}})
	if ready.Connected != 0 || !strings.Contains(ready.FirstErr, "certificate") {
		t.Fatalf("without -ca: ready = %+v, want every handshake refused over the certificate", ready)
	}
	inW.Close()
	<-done
}

// A certificate file that holds no certificate is an error before any
// client dials, not a run of failed handshakes.
func TestRunRejectsABadCertificateFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{bad: "no PEM certificate", filepath.Join(t.TempDir(), "none.pem"): "no such file"} {
		err := Run(t.Context(), Options{URL: "wss://127.0.0.1:1/ws", CAFile: file, Secret: "s", Clients: 1}, strings.NewReader(""), &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run with -ca %s: %v, want %q", file, err, want)
		}
	}
}

// With Users 1 every client authenticates with the one shared token (the
// old backend's AUTH_TOKEN); by default each has its own.
func TestRunSharesUsers(t *testing.T) {
	for _, tc := range []struct {
		users int
		want  []string
	}{
		{0, []string{"s3cret-0", "s3cret-1", "s3cret-2", "s3cret-3"}},
		{1, []string{"s3cret-0", "s3cret-0", "s3cret-0", "s3cret-0"}},
		{2, []string{"s3cret-0", "s3cret-0", "s3cret-1", "s3cret-1"}},
	} {
		g := &fakeGateway{secret: "s3cret"}
		srv := httptest.NewServer(g)
		inW, _, done, ready := startRunWith(t, Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Secret: "s3cret",
			Clients: 4, Users: tc.users, Products: []int64{7}})
		inW.Close()
		<-done
		srv.Close()
		g.mu.Lock()
		got := slices.Sorted(slices.Values(g.tokens))
		g.mu.Unlock()
		if ready.Connected != 4 || !slices.Equal(got, tc.want) {
			t.Errorf("users %d: %d connected with tokens %v, want %v", tc.users, ready.Connected, got, tc.want)
		}
	}
}

func TestUserIndex(t *testing.T) {
	if got := UserIndex(9_500, 3, 0); got != 9_503 {
		t.Errorf("one user each: client 3 of the second process is user %d, want 9503", got)
	}
	if got := UserIndex(9_500, 3, 1); got != 0 {
		t.Errorf("one shared user: user %d, want 0", got)
	}
}
