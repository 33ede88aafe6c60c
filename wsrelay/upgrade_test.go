package wsrelay

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/settings"
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

// dialOpen is dialStatus for a socket that stays open until the test ends.
func dialOpen(t *testing.T, f *fixture, header http.Header) int {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(f.wsURL(), header)
	if err == nil {
		t.Cleanup(func() { c.Close() })
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
	t.Run("per-address unauthenticated cap", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxUnauthenticatedPerAddress = 2
		cfg.AuthTimeout = settings.Duration(5 * time.Second)
		f := newFixture(t, cfg, Options{ClientIP: headerClientIP})
		first := f.dial(fromAddr("192.0.2.1")).greeted()
		f.dial(fromAddr("192.0.2.1")).greeted()
		for _, ip := range []string{"192.0.2.1", "::ffff:192.0.2.1"} {
			c, resp, err := websocket.DefaultDialer.Dial(f.wsURL(), fromAddr(ip))
			if err == nil {
				c.Close()
				t.Fatalf("a third unauthenticated socket from %s was accepted", ip)
			}
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "5" {
				t.Errorf("third unauthenticated socket from %s: %d Retry-After %q, want 429 and 5", ip, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}
		for _, d := range []struct {
			ip   string
			want int
		}{{"192.0.2.2", 101}, {"2001:db8::1", 101}, {"2001:db8::2", 101}, {"2001:db8::3", 429}, {"2001:db8:0:1::1", 101}} {
			if s := dialOpen(t, f, fromAddr(d.ip)); s != d.want {
				t.Errorf("from %s: %d, want %d", d.ip, s, d.want)
			}
		}
		first.authenticate(tokenAlice) // frees its address's slot
		f.dial(fromAddr("192.0.2.1")).greeted()
	})
	t.Run("per-/64 rate", func(t *testing.T) {
		clock := &frozenClock{now: time.Unix(1_800_000_000, 0)}
		cfg := testConfig()
		cfg.ConnectionsPerMinute = 2
		f := newFixture(t, cfg, Options{Now: clock.Now, ClientIP: headerClientIP})
		for ip, want := range map[string]int{"2001:db8::1": 101, "2001:db8::2": 101, "2001:db8:0:1::1": 101} {
			if s := dialStatus(t, f, fromAddr(ip)); s != want {
				t.Errorf("from %s: %d, want %d", ip, s, want)
			}
		}
		if s := dialStatus(t, f, fromAddr("2001:db8::ffff")); s != http.StatusTooManyRequests {
			t.Errorf("a third socket from one /64 in a minute: %d, want 429", s)
		}
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
