package sseupstream

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/nellis-edge/gateway/settings"
)

func TestReconnectsAfterCleanEndOfStream(t *testing.T) {
	clock := newFakeClock()
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		send(w, fmt.Sprintf("data: connected session-%d\n\n", n))
	})
	cfg := testConfig(srv, clock)
	sub, rec := subscribe(t, cfg)

	for round := 1; round <= 3; round++ {
		next(t, rec.ups)
		ev := next(t, rec.events)
		want := fmt.Sprintf("session-%d", round)
		if ev.Kind != Connected || ev.SessionID != want {
			t.Fatalf("round %d: got %v %q, want connected %q", round, ev.Kind, ev.SessionID, want)
		}
		if got := sub.SessionID(); got != want {
			t.Fatalf("round %d: session id %q, want %q", round, got, want)
		}
		down := next(t, rec.downs)
		if down.reason != ReasonEOF || down.err != nil {
			t.Fatalf("round %d: down %q %v, want a clean eof", round, down.reason, down.err)
		}
		ceiling := DefaultBackoffBase << (round - 1)
		if down.retryIn < 0 || down.retryIn >= ceiling {
			t.Fatalf("round %d: retry in %s, want within [0, %s)", round, down.retryIn, ceiling)
		}
		sleepThrough(t, clock, down.retryIn)
	}
	next(t, rec.ups)
	if got := srv.requests.Load(); got != 4 {
		t.Fatalf("%d requests, want 4", got)
	}
}

// The library gives up for good on the first failure 15 minutes after its
// first connect. A subscription must reconnect at once after a long healthy
// stream ends, with its backoff back at the start.
func TestReconnectsAfterTwentyMinutesOfHealthWithBackoffReset(t *testing.T) {
	clock := newFakeClock()
	endStream := make(chan struct{})
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		switch {
		case n <= 5:
			http.Error(w, "upstream sad", http.StatusInternalServerError)
		case n == 6:
			startStream(w)
			send(w, "data: connected long-lived\n\n")
			select {
			case <-endStream:
			case <-r.Context().Done():
			}
		default:
			startStream(w)
			<-r.Context().Done()
		}
	})
	cfg := testConfig(srv, clock)
	cfg.StallTimeout = settings.Duration(time.Hour)
	cfg.randInt64N = func(n int64) int64 { return n - 1 } // the top of every window
	sub, rec := subscribe(t, cfg)

	for i := range 5 {
		down := next(t, rec.downs)
		want := min(DefaultBackoffBase<<i, DefaultBackoffMax) - 1
		if down.reason != ReasonStatus || down.retryIn != want {
			t.Fatalf("failure %d: %q retry in %s, want status retry in %s", i+1, down.reason, down.retryIn, want)
		}
		sleepThrough(t, clock, down.retryIn)
	}
	next(t, rec.ups)
	next(t, rec.events)
	clock.Advance(20 * time.Minute)
	if !sub.Healthy() {
		t.Fatal("a stream with a 1 h stall timeout is not healthy after 20 min")
	}
	close(endStream)

	down := next(t, rec.downs)
	if down.reason != ReasonEOF {
		t.Fatalf("down reason %q, want eof", down.reason)
	}
	if want := DefaultBackoffBase - 1; down.retryIn != want {
		t.Fatalf("retry in %s after a healthy stream, want the reset %s", down.retryIn, want)
	}
	sleepThrough(t, clock, down.retryIn)
	next(t, rec.ups)
	if got := srv.requests.Load(); got != 7 {
		t.Fatalf("%d requests, want 7", got)
	}
}

func TestRetriesForeverWithJitteredCappedBackoff(t *testing.T) {
	const failures = 200
	statusServer := func(t *testing.T, status int, contentType string) string {
		srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
		})
		return srv.URL
	}
	tests := []struct {
		name     string
		endpoint func(t *testing.T) string
		reason   Reason
		errText  string
	}{
		{"500", func(t *testing.T) string { return statusServer(t, 500, "text/plain") }, ReasonStatus, "status 500"},
		{"404", func(t *testing.T) string { return statusServer(t, 404, "text/plain") }, ReasonStatus, "status 404"},
		{"200 html", func(t *testing.T) string { return statusServer(t, 200, "text/html") }, ReasonStatus, `content type "text/html"`},
		{"closed port", closedPortURL, ReasonDial, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			client := &http.Client{Transport: &http.Transport{}}
			t.Cleanup(client.CloseIdleConnections)
			core, logs := observer.New(zap.DebugLevel)
			cfg := Config{
				Endpoint:   tt.endpoint(t),
				HTTPClient: client,
				Clock:      clock,
				Logger:     zap.New(core),
				randInt64N: rand.New(rand.NewPCG(3, 4)).Int64N,
			}
			sub, rec := subscribe(t, cfg)
			start := clock.Now()

			distinct := map[time.Duration]bool{}
			var longest time.Duration
			for i := range failures {
				down := next(t, rec.downs)
				if down.reason != tt.reason || down.err == nil || !strings.Contains(down.err.Error(), tt.errText) {
					t.Fatalf("failure %d: %q %v, want %q mentioning %q", i+1, down.reason, down.err, tt.reason, tt.errText)
				}
				ceiling := min(DefaultBackoffBase<<min(i, 10), DefaultBackoffMax)
				if down.retryIn < 0 || down.retryIn >= ceiling {
					t.Fatalf("failure %d: retry in %s, want within [0, %s)", i+1, down.retryIn, ceiling)
				}
				distinct[down.retryIn] = true
				longest = max(longest, down.retryIn)
				sleepThrough(t, clock, down.retryIn)
			}
			if len(distinct) < failures/2 {
				t.Errorf("only %d distinct delays in %d: not jittered", len(distinct), failures)
			}
			if longest < 10*time.Second {
				t.Errorf("longest delay %s: backoff did not grow towards the 15s cap", longest)
			}
			if elapsed := clock.Now().Sub(start); elapsed < 15*time.Minute {
				t.Errorf("only %s of retrying; the point is to outlast the library's 15 minutes", elapsed)
			}
			if sub.Healthy() {
				t.Error("healthy without ever connecting")
			}
			none(t, rec.ups)
			if warnings := logs.FilterLevelExact(zap.WarnLevel).Len(); warnings != 1 {
				t.Errorf("%d warnings for one outage, want 1", warnings)
			}
			// The subscription is already on its next attempt, which may
			// have logged too.
			if got := logs.FilterLevelExact(zap.DebugLevel).FilterMessage("sse stream down").Len(); got < failures-1 {
				t.Errorf("%d debug lines for the retries, want at least %d", got, failures-1)
			}
		})
	}
}

// closedPortURL is the URL of a local port nothing listens on.
func closedPortURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestStalledStreamReconnects(t *testing.T) {
	clock := newFakeClock()
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		send(w, "data: ping\n\n")
		<-r.Context().Done() // holds the socket open, silent
	})
	cfg := testConfig(srv, clock)
	sub, rec := subscribe(t, cfg)

	next(t, rec.ups)
	next(t, rec.events)
	observed(t, sub)
	clock.WaitForTimers(t, 1) // the watchdog
	if !sub.Healthy() {
		t.Fatal("fresh stream not healthy")
	}
	clock.Advance(DefaultStallTimeout - time.Millisecond)
	if !sub.Healthy() {
		t.Fatal("stream unhealthy before the stall timeout")
	}
	none(t, rec.downs)
	clock.Advance(time.Millisecond)
	if sub.Healthy() {
		t.Fatal("silent stream still healthy at the stall timeout")
	}
	down := next(t, rec.downs)
	if down.reason != ReasonStall {
		t.Fatalf("down reason %q, want stall", down.reason)
	}
	sleepThrough(t, clock, down.retryIn)
	next(t, rec.ups)
	if got := srv.requests.Load(); got != 2 {
		t.Fatalf("%d requests, want 2", got)
	}
}

// observed waits until no observer call runs: the recorder takes a call's
// value inside the call, and a watchdog that finds the call still running
// counts no silence (TestSlowObserverIsNotAStall).
func observed(t *testing.T, sub *Subscription) {
	t.Helper()
	waitFor(t, "the observer to return", func() bool { return !sub.observing.Load() })
}

// blockingRecorder is a recorder whose StreamEvent waits for release the
// first time: a feed goroutine busy delivering to thousands of sockets.
type blockingRecorder struct {
	*recorder
	blocked chan struct{} // closed when the first event is being observed
	release chan struct{}
	once    sync.Once
}

func (r *blockingRecorder) StreamEvent(ev Event) {
	r.once.Do(func() {
		close(r.blocked)
		<-r.release
	})
	r.recorder.StreamEvent(ev)
}

// Regression: a feed that fell seconds behind under load blocked its
// stream's observer, the unread stream looked silent, and the watchdog cut
// a healthy stream; its reconnect and the snapshot that healed the gap cost
// more of what was short (the 100,000 deliveries/s bench row).
func TestSlowObserverIsNotAStall(t *testing.T) {
	clock := newFakeClock()
	ping := make(chan struct{})
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		send(w, "data: ping\n\n")
		for {
			select {
			case <-ping:
				send(w, "data: ping\n\n")
			case <-r.Context().Done():
				return
			}
		}
	})
	rec := &blockingRecorder{recorder: newRecorder(), blocked: make(chan struct{}), release: make(chan struct{})}
	sub := Subscribe(testConfig(srv, clock), testProductID, rec)
	t.Cleanup(sub.Close)
	release := sync.OnceFunc(func() { close(rec.release) })
	t.Cleanup(release) // before Close, which waits for the observer
	next(t, rec.ups)
	<-rec.blocked
	clock.WaitForTimers(t, 1) // the watchdog
	for range 4 {
		clock.Advance(DefaultStallTimeout)
		clock.WaitForTimers(t, 1)
	}
	none(t, rec.downs)
	release()
	next(t, rec.events)
	ping <- struct{}{}
	next(t, rec.events)
	none(t, rec.downs)

	// The watchdog still works once the observer is quick again (and
	// has returned: the recorder takes the event inside the call).
	observed(t, sub)
	clock.WaitForTimers(t, 1)
	clock.Advance(DefaultStallTimeout)
	if down := next(t, rec.downs); down.reason != ReasonStall {
		t.Fatalf("down reason %q, want stall", down.reason)
	}
}

// Nellis's heartbeat is a ping event, but a server that proves itself alive
// with SSE comments alone must not be taken for stalled: every byte counts.
func TestCommentsKeepStreamAlive(t *testing.T) {
	for _, comment := range []string{": keep-alive\n\n", ":\n", ":hb\r\n"} {
		t.Run(strings.TrimSpace(comment), func(t *testing.T) {
			clock := newFakeClock()
			sendComment := make(chan struct{})
			srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
				startStream(w)
				for {
					select {
					case <-sendComment:
						send(w, comment)
					case <-r.Context().Done():
						return
					}
				}
			})
			sub, rec := subscribe(t, testConfig(srv, clock))
			next(t, rec.ups)

			for range 10 {
				clock.Advance(DefaultStallTimeout * 2 / 3)
				sendComment <- struct{}{}
				now := clock.Now()
				waitFor(t, "the comment to be read", func() bool { return sub.LastByte().Equal(now) })
			}
			none(t, rec.downs)
			if !sub.Healthy() {
				t.Error("stream kept alive by comments is not healthy")
			}
			none(t, rec.events)
			if !sub.LastEvent().IsZero() {
				t.Errorf("comments counted as events: last event %s", sub.LastEvent())
			}
		})
	}
}

// A stream that drips a byte at a time keeps the byte watchdog quiet but
// delivers prices seconds late: with no whole line for three stall
// timeouts it is stalled too, and replaced.
func TestTricklingStreamIsStalled(t *testing.T) {
	clock := newFakeClock()
	drip := make(chan struct{})
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		if n > 1 {
			<-r.Context().Done()
			return
		}
		for _, b := range []byte("data: ping\n\n") {
			select {
			case <-drip:
				send(w, string(b))
			case <-r.Context().Done():
				return
			}
		}
		<-r.Context().Done()
	})
	sub, rec := subscribe(t, testConfig(srv, clock))
	next(t, rec.ups)
	clock.WaitForTimers(t, 1) // the watchdog
	start := clock.Now()
	// One byte every two thirds of the stall timeout: never silent for a
	// stall timeout, yet "data: ping" takes 10 of them to finish its line.
	for range len("data: ping") {
		clock.Advance(DefaultStallTimeout * 2 / 3)
		if clock.Now().Sub(start) >= tricklingFactor*DefaultStallTimeout {
			break
		}
		drip <- struct{}{}
		now := clock.Now()
		waitFor(t, "the byte to be read", func() bool { return sub.LastByte().Equal(now) })
		none(t, rec.downs)
	}
	clock.Advance(tricklingFactor*DefaultStallTimeout - clock.Now().Sub(start))
	down := next(t, rec.downs)
	if down.reason != ReasonStall || !strings.Contains(down.err.Error(), "trickling") {
		t.Fatalf("down %q %v, want a trickling stall", down.reason, down.err)
	}
	none(t, rec.events)
}

func TestSessionIDKeptAcrossReconnects(t *testing.T) {
	clock := newFakeClock()
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		switch n {
		case 1:
			send(w, "data: connected e1177558-b227-4b52-9d06-dabac95b4794,0xc003538ee0-0xc003538f50\n\n")
		case 2:
			send(w, "data: ping\n\n")
		case 3:
			send(w, "data: connected session-B\n\n")
			<-r.Context().Done()
		}
	})
	sub, rec := subscribe(t, testConfig(srv, clock))
	// (Nothing before the first stream: TestNothingKnownBeforeFirstConnect.
	// Here the stream may be up before the first look.)
	next(t, rec.events)
	const first = "e1177558-b227-4b52-9d06-dabac95b4794,0xc003538ee0-0xc003538f50"
	if got := sub.SessionID(); got != first {
		t.Fatalf("session id %q, want %q", got, first)
	}
	sleepThrough(t, clock, next(t, rec.downs).retryIn)
	if ev := next(t, rec.events); ev.Kind != Ping {
		t.Fatalf("second stream sent %v, want ping", ev.Kind)
	}
	if got := sub.SessionID(); got != first {
		t.Fatalf("session id %q after a reconnect without greeting, want %q kept", got, first)
	}
	sleepThrough(t, clock, next(t, rec.downs).retryIn)
	next(t, rec.events)
	if got := sub.SessionID(); got != "session-B" {
		t.Fatalf("session id %q, want the new session-B", got)
	}
}

func TestCloseReturnsPromptlyAndLeavesNothingRunning(t *testing.T) {
	t.Run("during connect", func(t *testing.T) {
		arrived := make(chan struct{})
		handlerDone := make(chan struct{})
		srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
			defer close(handlerDone)
			close(arrived) // no headers: the client is still connecting
			<-r.Context().Done()
		})
		sub, rec := subscribe(t, testConfig(srv, newFakeClock()))
		next(t, arrived)
		closeWithin(t, sub)
		next(t, handlerDone)
		none(t, rec.ups)
		none(t, rec.downs)
	})

	t.Run("during backoff", func(t *testing.T) {
		clock := newFakeClock()
		srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", http.StatusServiceUnavailable)
		})
		cfg := testConfig(srv, clock)
		cfg.randInt64N = func(n int64) int64 { return n - 1 }
		sub, rec := subscribe(t, cfg)
		next(t, rec.downs)
		clock.WaitForTimers(t, 1)
		closeWithin(t, sub)
		if clock.Pending() != 0 {
			t.Error("backoff timer left running")
		}
		clock.Advance(time.Hour)
		if got := srv.requests.Load(); got != 1 {
			t.Fatalf("%d requests after Close, want the 1 before it", got)
		}
		none(t, rec.downs)
	})

	t.Run("during blocked read", func(t *testing.T) {
		clock := newFakeClock()
		handlerDone := make(chan struct{})
		srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
			defer close(handlerDone)
			startStream(w)
			send(w, "data: connected s\n\n")
			<-r.Context().Done()
		})
		sub, rec := subscribe(t, testConfig(srv, clock))
		next(t, rec.events)
		clock.WaitForTimers(t, 1)
		closeWithin(t, sub)
		next(t, handlerDone) // the connection is closed: the server saw it go
		if clock.Pending() != 0 {
			t.Error("watchdog timer left running")
		}
		if sub.Healthy() {
			t.Error("closed subscription reports healthy")
		}
		none(t, rec.downs)
		closeWithin(t, sub) // idempotent
	})
}

// closeWithin closes sub and fails if that takes more than a moment.
func closeWithin(t *testing.T, sub *Subscription) {
	t.Helper()
	start := time.Now()
	sub.Close()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close took %s", took)
	}
}

func TestUpdateConfigAppliesToOpenStream(t *testing.T) {
	clock := newFakeClock()
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		<-r.Context().Done()
	})
	cfg := testConfig(srv, clock)
	sub, rec := subscribe(t, cfg)
	next(t, rec.ups)
	clock.WaitForTimers(t, 1)

	sub.UpdateConfig(Config{Endpoint: "ftp://nope"}) // invalid: ignored
	longer := cfg
	longer.StallTimeout = settings.Duration(10 * time.Second)
	longer.HTTPClient = nil // keeps the current client
	sub.UpdateConfig(longer)

	clock.Advance(DefaultStallTimeout)
	clock.WaitForTimers(t, 1) // the watchdog re-armed with the new timeout
	none(t, rec.downs)
	if !sub.Healthy() {
		t.Fatal("unhealthy 3s into a 10s stall timeout")
	}
	clock.Advance(7 * time.Second)
	if down := next(t, rec.downs); down.reason != ReasonStall {
		t.Fatalf("down reason %q, want stall", down.reason)
	}
	if got := sub.config().HTTPClient; got != cfg.HTTPClient {
		t.Error("update without a client replaced the client")
	}
}

type panickingObserver struct{ *recorder }

func (p panickingObserver) StreamEvent(ev Event) {
	p.recorder.StreamEvent(ev)
	panic("observer bug")
}

// A bug in an observer must not end the subscription of a watched lot.
func TestObserverPanicDoesNotStopTheStream(t *testing.T) {
	release := make(chan struct{})
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		startStream(w)
		send(w, "data: ping\n\n")
		select {
		case <-release:
			send(w, "data: connected after-panic\n\n")
		case <-r.Context().Done():
			return
		}
		<-r.Context().Done()
	})
	core, logs := observer.New(zap.ErrorLevel)
	cfg := testConfig(srv, newFakeClock())
	cfg.Logger = zap.New(core)
	rec := newRecorder()
	sub := Subscribe(cfg, testProductID, panickingObserver{rec})
	t.Cleanup(sub.Close)

	next(t, rec.events)
	close(release)
	if ev := next(t, rec.events); ev.SessionID != "after-panic" {
		t.Fatalf("second event %+v", ev)
	}
	if sub.SessionID() != "after-panic" {
		t.Fatalf("session id %q", sub.SessionID())
	}
	if got := logs.FilterMessage("sse observer panicked").Len(); got < 1 {
		t.Error("observer panic not logged")
	}
	none(t, rec.downs)
}

func TestNothingKnownBeforeFirstConnect(t *testing.T) {
	arrived := make(chan struct{})
	srv := newSSEServer(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	sub, _ := subscribe(t, testConfig(srv, newFakeClock()))
	next(t, arrived)
	if sub.Healthy() || !sub.LastByte().IsZero() || !sub.LastEvent().IsZero() || sub.SessionID() != "" {
		t.Fatalf("before any response: healthy %v, last byte %v, last event %v, session %q",
			sub.Healthy(), sub.LastByte(), sub.LastEvent(), sub.SessionID())
	}
}
