package nellissim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait for something that should happen promptly.
const waitLimit = 5 * time.Second

// fakeClock is the auction clock under the test's control.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 9, 15, 20, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

type testSim struct {
	*Simulator
	srv   *httptest.Server
	clock *fakeClock
}

// newTestSim starts a simulator on a fake clock behind an httptest server.
// Pings are hourly unless cfg asks otherwise, so streams carry only what a
// test provokes. Both are closed when the test ends, the simulator first
// so the server's Close does not wait on open streams.
func newTestSim(t *testing.T, cfg Config) *testSim {
	t.Helper()
	clock := newFakeClock()
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Hour
	}
	sim := New(cfg)
	sim.closeCheck = 5 * time.Millisecond
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	sim.Start()
	return &testSim{Simulator: sim, srv: srv, clock: clock}
}

func (ts *testSim) firstLot(t *testing.T) Auction {
	t.Helper()
	return ts.Auctions()[0]
}

func (ts *testSim) auction(t *testing.T, id int64) Auction {
	t.Helper()
	for _, a := range ts.Auctions() {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("no auction %d", id)
	return Auction{}
}

// sseConn is an open stream whose bytes a goroutine collects as they come.
type sseConn struct {
	resp   *http.Response
	mu     sync.Mutex
	buf    []byte
	reads  int
	err    error         // why reading stopped
	notify chan struct{} // signalled after every read
	ended  chan struct{}
}

// openStream GETs the product's stream and starts collecting its bytes.
func (ts *testSim) openStream(t *testing.T, id int64) *sseConn {
	t.Helper()
	resp := ts.get(t, "/live-products?productId="+strconv.FormatInt(id, 10), nil)
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("stream status %d, want 200", resp.StatusCode)
	}
	c := &sseConn{resp: resp, notify: make(chan struct{}, 1), ended: make(chan struct{})}
	go c.collect()
	t.Cleanup(func() {
		resp.Body.Close()
		<-c.ended
	})
	return c
}

func (c *sseConn) collect() {
	defer close(c.ended)
	p := make([]byte, 64<<10)
	for {
		n, err := c.resp.Body.Read(p)
		c.mu.Lock()
		c.buf = append(c.buf, p[:n]...)
		if n > 0 {
			c.reads++
		}
		if err != nil {
			c.err = err
		}
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

func (c *sseConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf)
}

// waitFor returns everything read so far once it contains want n times.
func (c *sseConn) waitFor(t *testing.T, want string, n int) string {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got, err := string(c.buf), c.err
		c.mu.Unlock()
		if strings.Count(got, want) >= n {
			return got
		}
		if err != nil {
			t.Fatalf("stream ended (%v) before %q appeared %d times; got %q", err, want, n, truncate(got, 500))
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			t.Fatalf("%q did not appear %d times within %s; got %q", want, n, waitLimit, truncate(got, 500))
		}
	}
}

// waitEnd waits for the body to end and returns the read error.
func (c *sseConn) waitEnd(t *testing.T) error {
	t.Helper()
	select {
	case <-c.ended:
	case <-time.After(waitLimit):
		t.Fatalf("stream still open after %s", waitLimit)
	}
	return c.err
}

func (ts *testSim) get(t *testing.T, path string, cookie *http.Cookie) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, ts.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := ts.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// fetch GETs path and returns status, content type and body.
func (ts *testSim) fetch(t *testing.T, path string, cookie *http.Cookie) (int, string, []byte) {
	t.Helper()
	resp := ts.get(t, path, cookie)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// post sends body and returns status and response body.
func (ts *testSim) post(t *testing.T, path, contentType, body string, cookie *http.Cookie) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, ts.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := ts.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func userCookieFor(name string) *http.Cookie { return &http.Cookie{Name: userCookie, Value: name} }
