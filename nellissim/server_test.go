package nellissim

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestServeProtocols serves the simulator over TLS with h2, over TLS with
// HTTP/1.1 alone, and in plain HTTP: a client trusting CertPEM gets the
// protocol offered, and the server counts the connection it took and
// drops it on demand.
func TestServeProtocols(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  ServeOptions
		proto int
	}{
		{"h2", ServeOptions{TLS: true}, 2},
		{"http1 over tls", ServeOptions{TLS: true, HTTP1Only: true}, 1},
		{"http1", ServeOptions{}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := New(Config{Seed: 3, Auctions: 1})
			srv, err := sim.Serve(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				sim.Close()
				if err := srv.Close(); err != nil {
					t.Error(err)
				}
			}()
			tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: srv.RootCAs()}}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: waitLimit}
			resp, err := client.Get(srv.URL + "/_sim/auctions")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != tc.proto {
				t.Errorf("got %d over HTTP/%d, want 200 over HTTP/%d", resp.StatusCode, resp.ProtoMajor, tc.proto)
			}
			if got := srv.Accepted(); got != 1 {
				t.Errorf("accepted %d connections, want 1", got)
			}
			if got := srv.DropConnections(); got != 1 {
				t.Errorf("dropped %d connections, want 1", got)
			}
			deadline := time.Now().Add(waitLimit)
			for srv.Open() != 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if got := srv.Open(); got != 0 {
				t.Errorf("%d connections open after the drop", got)
			}
		})
	}
}

// TestSetCloseTime: a lot moved to close soon closes then, and its
// snapshot tells the new time beforehand; a closed lot cannot be moved.
func TestSetCloseTime(t *testing.T) {
	ts := newTestSim(t, Config{Seed: 5, Auctions: 2})
	a := ts.firstLot(t)
	at := ts.clock.Now().Add(90 * time.Second).UTC()
	if err := ts.SetCloseTime(a.ID, at); err != nil {
		t.Fatal(err)
	}
	if got := ts.auction(t, a.ID); !got.CloseTime.Equal(at) || got.IsClosed {
		t.Fatalf("close time %s (closed %v), want %s and open", got.CloseTime, got.IsClosed, at)
	}
	ts.clock.Advance(91 * time.Second)
	if got := ts.auction(t, a.ID); !got.IsClosed {
		t.Fatal("the lot is still open after its new close time")
	}
	if err := ts.SetCloseTime(a.ID, at.Add(time.Hour)); err == nil {
		t.Error("moved the close of a closed lot")
	}
	if err := ts.SetCloseTime(1, at); err == nil {
		t.Error("moved the close of an unknown lot")
	}
}
