package sseupstream

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/clock"
)

// testTimeout bounds every wait for something that should happen at once;
// reaching it means the behaviour under test is broken.
const testTimeout = 5 * time.Second

const testProductID = 58040119

type decodeFailure struct {
	productID int64
	name      string
	err       error
}

type streamDown struct {
	productID int64
	reason    Reason
	err       error
	retryIn   time.Duration
}

// recorder is an Observer that queues every call for the test to take.
type recorder struct {
	ups     chan int64
	events  chan Event
	decodes chan decodeFailure
	downs   chan streamDown
}

func newRecorder() *recorder {
	const depth = 1024
	return &recorder{
		ups:     make(chan int64, depth),
		events:  make(chan Event, depth),
		decodes: make(chan decodeFailure, depth),
		downs:   make(chan streamDown, depth),
	}
}

func (r *recorder) StreamUp(productID int64) { r.ups <- productID }
func (r *recorder) StreamEvent(ev Event)     { r.events <- ev }
func (r *recorder) StreamDecodeError(productID int64, name string, err error) {
	r.decodes <- decodeFailure{productID, name, err}
}
func (r *recorder) StreamDown(productID int64, reason Reason, err error, retryIn time.Duration) {
	r.downs <- streamDown{productID, reason, err, retryIn}
}

// next takes the next value from ch, failing the test if none comes.
func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		var zero T
		t.Fatalf("timed out waiting for %T", zero)
		return zero
	}
}

// none fails the test if ch holds anything.
func none[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %T: %+v", v, v)
	default:
	}
}

// waitFor polls cond until it holds: for state the subscription exposes
// only through accessors.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// sseServer is an httptest server whose handler the test supplies per
// request number (1-based). It counts requests.
type sseServer struct {
	*httptest.Server
	requests atomic.Int64
}

func newSSEServer(t *testing.T, handle func(n int64, w http.ResponseWriter, r *http.Request)) *sseServer {
	t.Helper()
	s := &sseServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("productId"); r.URL.Path != "/live-products" || got != fmt.Sprint(testProductID) {
			http.Error(w, "wrong stream "+r.URL.String(), http.StatusBadRequest)
			return
		}
		handle(s.requests.Add(1), w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// startStream writes the headers of a 200 event stream and flushes them.
func startStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// send writes raw stream text and flushes it.
func send(w http.ResponseWriter, text string) {
	_, _ = io.WriteString(w, text)
	w.(http.Flusher).Flush()
}

// testConfig is a config against srv on clock, with deterministic jitter.
func testConfig(srv *sseServer, clock clock.Clock) Config {
	return Config{
		Endpoint:   srv.URL,
		HTTPClient: srv.Client(),
		Clock:      clock,
		randInt64N: rand.New(rand.NewPCG(1, 2)).Int64N,
	}
}

// subscribe starts a subscription closed at the end of the test (before
// the server, so that held-open handlers can return).
func subscribe(t *testing.T, cfg Config) (*Subscription, *recorder) {
	t.Helper()
	rec := newRecorder()
	sub := Subscribe(cfg, testProductID, rec)
	t.Cleanup(sub.Close)
	return sub, rec
}

// sleepThrough advances clock past a backoff sleep of d.
func sleepThrough(t *testing.T, clock *fakeClock, d time.Duration) {
	t.Helper()
	if d <= 0 {
		return
	}
	clock.WaitForTimers(t, 1)
	clock.Advance(d)
}
