package wsrelay

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func dialStatus(t *testing.T, f *fixture, header http.Header) int {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(f.wsURL(), header)
	if err == nil {
		c.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

func TestUpgradeRefusals(t *testing.T) {
	t.Run("origin", func(t *testing.T) {
		f := newFixture(t, testConfig(), Options{})
		if s := dialStatus(t, f, http.Header{"Origin": {"chrome-extension://evil"}}); s != http.StatusForbidden {
			t.Errorf("foreign origin: %d, want 403", s)
		}
		if s := dialStatus(t, f, http.Header{"Origin": {"chrome-extension://good"}}); s != http.StatusSwitchingProtocols {
			t.Errorf("allowed origin: %d", s)
		}
		if s := dialStatus(t, f, nil); s != http.StatusSwitchingProtocols {
			t.Errorf("no origin: %d", s)
		}
	})
	t.Run("per-IP rate", func(t *testing.T) {
		clock := &frozenClock{now: time.Unix(1_800_000_000, 0)}
		cfg := testConfig()
		cfg.ConnectionsPerMinute = 2
		f := newFixture(t, cfg, Options{Now: clock.Now})
		for i, want := range []int{101, 101, 429} {
			if s := dialStatus(t, f, nil); s != want {
				t.Errorf("dial %d: %d, want %d", i, s, want)
			}
		}
		clock.Advance(30 * time.Second)
		if s := dialStatus(t, f, nil); s != http.StatusSwitchingProtocols {
			t.Errorf("after 30s: %d", s)
		}
	})
	t.Run("unauthenticated cap", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxUnauthenticated = 2
		f := newFixture(t, cfg, Options{})
		a := f.connect()
		f.connect()
		if s := dialStatus(t, f, nil); s != http.StatusServiceUnavailable {
			t.Fatalf("third unauthenticated: %d, want 503", s)
		}
		a.send(map[string]any{"type": "authenticate", "token": tokenAlice})
		a.expectType("authenticated")
		f.connect() // the authenticated socket freed its slot
	})
	t.Run("old path and plain GET", func(t *testing.T) {
		f := newFixture(t, testConfig(), Options{})
		c, _, err := websocket.DefaultDialer.Dial(strings.TrimSuffix(f.wsURL(), "/ws")+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		resp, err := http.Get(f.srv.URL + "/ws")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired {
			t.Errorf("plain GET: %d", resp.StatusCode)
		}
	})
}

// caddyLikeWriter wraps a ResponseWriter the way Caddy does: no Hijacker,
// only Unwrap.
type caddyLikeWriter struct{ w http.ResponseWriter }

func (c caddyLikeWriter) Header() http.Header { return c.w.Header() }

func (c caddyLikeWriter) Write(b []byte) (int, error) { return c.w.Write(b) }

func (c caddyLikeWriter) WriteHeader(s int) { c.w.WriteHeader(s) }

func (c caddyLikeWriter) Unwrap() http.ResponseWriter { return c.w }

func TestUpgradeThroughWrappedWriter(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := http.ResponseWriter(caddyLikeWriter{w}).(http.Hijacker); ok {
			t.Error("the wrapper must not be a Hijacker")
		}
		f.relay.ServeWS(caddyLikeWriter{w}, r)
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("upgrade through a wrapped writer: %v", err)
	}
	defer ws.Close()
	c := &client{t: t, ws: ws}
	c.expectType("connected")
}
