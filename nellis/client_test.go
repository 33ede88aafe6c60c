package nellis

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// siteRequest is what the fake site saw of one request.
type siteRequest struct {
	format, path, rawQuery, cookie, userAgent, accept string
	hasCookie                                         bool
}

// fakeSite serves each snapshot format with its own handler and records
// every request.
type fakeSite struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	requests []siteRequest
	handlers map[string]http.HandlerFunc
}

func newFakeSite(t *testing.T) *fakeSite {
	t.Helper()
	s := &fakeSite{t: t, handlers: map[string]http.HandlerFunc{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fakeSite) serve(w http.ResponseWriter, r *http.Request) {
	format := FormatHTML
	switch {
	case strings.HasSuffix(r.URL.Path, ".data"):
		format = FormatData
	case r.URL.Query().Has("_data"):
		format = FormatJSON
	}
	s.mu.Lock()
	_, hasCookie := r.Header["Cookie"]
	s.requests = append(s.requests, siteRequest{
		format: format, path: r.URL.Path, rawQuery: r.URL.RawQuery, cookie: r.Header.Get("Cookie"),
		hasCookie: hasCookie, userAgent: r.UserAgent(), accept: r.Header.Get("Accept"),
	})
	h := s.handlers[format]
	s.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

// handle sets the handler of a format.
func (s *fakeSite) handle(format string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[format] = h
}

// formats lists the formats requested since the last call.
func (s *fakeSite) formats() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		out = append(out, r.format)
	}
	s.requests = nil
	return out
}

func (s *fakeSite) lastRequest() siteRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		s.t.Fatal("no request reached the site")
	}
	return s.requests[len(s.requests)-1]
}

func (s *fakeSite) client(t *testing.T, format string) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{APIEndpoint: s.srv.URL, HTTPClient: s.srv.Client(), Format: format})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// respond answers with a fixed status, content type and body.
func respond(status int, contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func TestClientSnapshotJSON(t *testing.T) {
	site := newFakeSite(t)
	serverDate := time.Date(2026, 9, 15, 20, 0, 0, 0, time.UTC)
	site.handle(FormatJSON, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Date", serverDate.Format(http.TimeFormat))
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, legacyJSON)
	})
	c, err := NewClient(ClientConfig{APIEndpoint: site.srv.URL, HTTPClient: site.srv.Client(), UserAgent: "test-agent"})
	if err != nil {
		t.Fatal(err)
	}
	receivedAt := time.Date(2026, 9, 15, 20, 0, 3, 0, time.UTC)
	c.now = func() time.Time { return receivedAt }

	snap, err := c.Snapshot(context.Background(), 58040119, "sid=abc; cf=1")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Format != FormatJSON || *snap.Patch.CurrentBid != 125 {
		t.Errorf("snapshot %+v", snap)
	}
	if !snap.ServerDate.Equal(serverDate) || !snap.ReceivedAt.Equal(receivedAt) {
		t.Errorf("ServerDate, ReceivedAt = %v, %v", snap.ServerDate, snap.ReceivedAt)
	}
	req := site.lastRequest()
	if req.path != "/p/x/58040119" || req.rawQuery != "_data=routes/p.$title.$productId._index" {
		t.Errorf("requested %s?%s", req.path, req.rawQuery)
	}
	if req.cookie != "sid=abc; cf=1" || req.userAgent != "test-agent" || req.accept != "application/json" {
		t.Errorf("headers: %+v", req)
	}
}

func TestClientSnapshotURLs(t *testing.T) {
	site := newFakeSite(t)
	site.handle(FormatData, respond(200, "text/x-script", readSample(t, "turbostream", "synthetic", "remix-route.data.txt")))
	site.handle(FormatHTML, respond(200, "text/html", readSample(t, "turbostream", "synthetic", "remix-document.html")))
	for _, tt := range []struct{ format, path, query string }{
		{FormatData, "/base/p/x/123456789.data", "_routes=routes%2Fp.%24title.%24productId._index"},
		{FormatHTML, "/base/p/x/123456789", ""},
	} {
		c, err := NewClient(ClientConfig{APIEndpoint: site.srv.URL + "/base/", HTTPClient: site.srv.Client(), Format: tt.format})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := c.Snapshot(context.Background(), 123456789, "")
		if err != nil {
			t.Fatalf("%s: %v", tt.format, err)
		}
		if snap.Format != tt.format || snap.ServerDate.IsZero() {
			t.Errorf("%s: snapshot %+v", tt.format, snap)
		}
		req := site.lastRequest()
		if req.path != tt.path || req.rawQuery != tt.query {
			t.Errorf("%s: requested %s?%s, want %s?%s", tt.format, req.path, req.rawQuery, tt.path, tt.query)
		}
		if req.hasCookie {
			t.Errorf("%s: a Cookie header was sent without cookies", tt.format)
		}
	}
}

func TestClientAutoFallsBackAndRemembers(t *testing.T) {
	site := newFakeSite(t)
	// Since single fetch, ?_data= answers 200 with an empty body.
	site.handle(FormatJSON, respond(200, "application/json", nil))
	site.handle(FormatData, respond(200, "text/x-script", readSample(t, "turbostream", "synthetic", "remix-route.data.txt")))
	site.handle(FormatHTML, respond(200, "text/html", readSample(t, "turbostream", "synthetic", "remix-document.html")))
	core, logs := observer.New(zap.InfoLevel)
	c, err := NewClient(ClientConfig{APIEndpoint: site.srv.URL, HTTPClient: site.srv.Client(), Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := func(wantFormat string, wantRequests ...string) {
		t.Helper()
		snap, err := c.Snapshot(ctx, 123456789, "")
		if err != nil {
			t.Fatal(err)
		}
		if snap.Format != wantFormat {
			t.Errorf("Format = %q, want %q", snap.Format, wantFormat)
		}
		if got := site.formats(); strings.Join(got, ",") != strings.Join(wantRequests, ",") {
			t.Errorf("requested %v, want %v", got, wantRequests)
		}
	}
	step(FormatData, FormatJSON, FormatData)
	step(FormatData, FormatData) // remembered
	// The .data route breaks: the others are tried again, json first.
	site.handle(FormatData, respond(404, "text/plain", []byte("gone")))
	step(FormatHTML, FormatData, FormatJSON, FormatHTML)
	step(FormatHTML, FormatHTML)
	if got := c.PreferredFormat(); got != FormatHTML {
		t.Errorf("PreferredFormat() = %q, want html", got)
	}
	// The old route comes back but html still works: no reason to move.
	site.handle(FormatJSON, respond(200, "application/json", []byte(`{"product":{"id":123456789,"currentPrice":41}}`)))
	step(FormatHTML, FormatHTML)

	switches := logs.FilterMessage("snapshot format switched").All()
	if len(switches) != 2 || switches[0].ContextMap()["to"] != FormatData || switches[1].ContextMap()["to"] != FormatHTML {
		t.Errorf("format switch logs: %v", switches)
	}
}

func TestClientJSONRouteMustAnswerJSON(t *testing.T) {
	site := newFakeSite(t)
	page := readSample(t, "turbostream", "synthetic", "remix-document.html")
	site.handle(FormatJSON, respond(200, "text/html", page))
	c := site.client(t, FormatJSON)
	_, err := c.Snapshot(context.Background(), 123456789, "")
	if !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), `content type "text/html"`) {
		t.Errorf("error %v, want ErrNoData about the content type", err)
	}
	site.handle(FormatJSON, respond(200, "application/json", nil))
	if _, err := c.Snapshot(context.Background(), 123456789, ""); !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "empty body") {
		t.Errorf("error %v, want ErrNoData for an empty body", err)
	}
}

func TestClientStatusError(t *testing.T) {
	site := newFakeSite(t)
	site.handle(FormatJSON, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	c := site.client(t, FormatAuto)
	_, err := c.Snapshot(context.Background(), 1, "")
	var status *StatusError
	if !errors.As(err, &status) || status.Code != 429 || status.RetryAfter != 7*time.Second {
		t.Fatalf("error %v, want a 429 *StatusError retrying after 7s", err)
	}
	// Throttled: trying the other formats would only make it worse.
	if got := site.formats(); len(got) != 1 {
		t.Errorf("requested %v after a 429, want only the first format", got)
	}

	serverDate := time.Date(2026, 9, 15, 20, 0, 0, 0, time.UTC)
	site.handle(FormatJSON, func(w http.ResponseWriter, _ *http.Request) {
		// The server's clock, not ours, measures an HTTP-date Retry-After.
		w.Header().Set("Date", serverDate.Format(http.TimeFormat))
		w.Header().Set("Retry-After", serverDate.Add(30*time.Second).Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	_, err = c.Snapshot(context.Background(), 1, "")
	if !errors.As(err, &status) || status.Code != 503 || status.RetryAfter != 30*time.Second {
		t.Fatalf("error %v, want a 503 *StatusError retrying after 30s", err)
	}
	if got := site.formats(); len(got) != 1 {
		t.Errorf("requested %v after a 503 with Retry-After, want only the first format", got)
	}
}

// A route that fails on its own must not pin auto to it.
func TestClientAutoMovesOnFromABrokenRoute(t *testing.T) {
	site := newFakeSite(t)
	site.handle(FormatJSON, respond(500, "text/plain", []byte("boom")))
	site.handle(FormatData, respond(200, "text/x-script", readSample(t, "turbostream", "synthetic", "remix-route.data.txt")))
	snap, err := site.client(t, FormatAuto).Snapshot(context.Background(), 123456789, "")
	if err != nil || snap.Format != FormatData {
		t.Fatalf("snapshot %+v, %v; want the data format", snap, err)
	}

	// When everything fails, the caller still finds the status to back off on.
	site.handle(FormatData, respond(502, "text/plain", nil))
	site.handle(FormatHTML, respond(502, "text/plain", nil))
	_, err = site.client(t, FormatAuto).Snapshot(context.Background(), 123456789, "")
	var status *StatusError
	if !errors.As(err, &status) || status.Code != 500 {
		t.Errorf("error %v, want the *StatusError of the first format", err)
	}
	if !strings.Contains(err.Error(), "502") {
		t.Errorf("error %v does not report every format", err)
	}
}

func TestClientRedirectOnDataRoute(t *testing.T) {
	site := newFakeSite(t)
	site.handle(FormatData, respond(202, "text/x-script", readSample(t, "turbostream", "synthetic", "remix-2.17.0-data-redirect-202.data.txt")))
	_, err := site.client(t, FormatData).Snapshot(context.Background(), 123, "")
	var r *Redirect
	if !errors.As(err, &r) || r.Location != "/p/Real-Title/123" {
		t.Errorf("error %v, want a *Redirect", err)
	}
}

func TestClientErrorsNeverContainCookies(t *testing.T) {
	const secret = "s3cr3t-session-value-0042"
	cookies := "cf=1; __session=" + secret
	site := newFakeSite(t)
	// A misbehaving site echoes the cookies back where errors quote bodies.
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, r.Header.Get("Cookie"))
	}
	site.handle(FormatJSON, echo)
	site.handle(FormatData, echo)
	site.handle(FormatHTML, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<script>window.__remixContext.streamController.enqueue("+r.Header.Get("Cookie")+")</script>")
	})
	_, err := site.client(t, FormatAuto).Snapshot(context.Background(), 1, cookies)
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error leaks the cookie: %v", err)
	}
	if !strings.Contains(err.Error(), "[redacted]") || !errors.Is(err, ErrMalformed) {
		t.Errorf("error %v: want the redacted decode errors, still wrapping ErrMalformed", err)
	}
	if got := site.formats(); len(got) != 3 {
		t.Errorf("requested %v, want all three formats", got)
	}
}

func TestClientRejectsCookiesWithControlCharacters(t *testing.T) {
	site := newFakeSite(t)
	_, err := site.client(t, FormatAuto).Snapshot(context.Background(), 1, "a=b\r\nX-Evil: 1")
	if err == nil || strings.Contains(err.Error(), "Evil") {
		t.Errorf("error %v, want a refusal that does not echo the cookies", err)
	}
	if got := site.formats(); len(got) != 0 {
		t.Errorf("requested %v", got)
	}
}

func TestClientBodyTooLarge(t *testing.T) {
	site := newFakeSite(t)
	site.handle(FormatHTML, func(w http.ResponseWriter, _ *http.Request) {
		chunk := []byte(strings.Repeat("x", 64<<10))
		for written := 0; written <= MaxBodyBytes; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	_, err := site.client(t, FormatHTML).Snapshot(context.Background(), 1, "")
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("error %v, want ErrBodyTooLarge", err)
	}
}

func TestClientStopsOnCancelledContext(t *testing.T) {
	site := newFakeSite(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := site.client(t, FormatAuto).Snapshot(ctx, 1, "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if strings.Count(err.Error(), "snapshot") != 1 {
		t.Errorf("error %v: more than one format tried after cancellation", err)
	}
}

func TestClientConcurrentSnapshots(t *testing.T) {
	site := newFakeSite(t)
	site.handle(FormatData, respond(200, "text/x-script", readSample(t, "turbostream", "synthetic", "remix-route.data.txt")))
	c := site.client(t, FormatAuto)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := c.Snapshot(context.Background(), 123456789, "")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := c.PreferredFormat(); got != FormatData {
		t.Errorf("PreferredFormat() = %q, want data", got)
	}
}

func TestNewClient(t *testing.T) {
	c, err := NewClient(ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if c.base.String() != DefaultAPIEndpoint || c.format != FormatAuto || c.userAgent != DefaultUserAgent || c.http.Timeout != DefaultTimeout {
		t.Errorf("defaults: %+v", c)
	}
	for _, cfg := range []ClientConfig{
		{Format: "xml"},
		{APIEndpoint: "ftp://example.invalid"},
		{APIEndpoint: "/relative"},
		{APIEndpoint: "https://example.invalid/?a=b"},
		{APIEndpoint: "https://user:hunter2@example.invalid/%zz"},
	} {
		_, err := NewClient(cfg)
		if err == nil {
			t.Errorf("NewClient(%+v) succeeded", cfg)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error echoes credentials: %v", err)
		}
	}
}
