package fallback

import (
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

// TestBreaker drives the state machine through scripted outcomes: each step
// is an event at an offset from t0, then the expected state.
func TestBreaker(t *testing.T) {
	cfg := BreakerConfig{Failures: 3, OpenAfter: settings.Duration(20 * time.Second), CoolDown: settings.Duration(10 * time.Second), MaxCoolDown: 25 * time.Second, ProbeTimeout: 5 * time.Second}
	type step struct {
		at    time.Duration
		event string // fail, healthy, tick
		want  BreakerState
	}
	tests := []struct {
		name        string
		steps       []step
		transitions string // "from>to:reason" joined by spaces
	}{
		{
			name:        "two failures keep it closed",
			steps:       []step{{0, "fail", BreakerClosed}, {time.Second, "fail", BreakerClosed}},
			transitions: "",
		},
		{
			name:        "healthy resets the count",
			steps:       []step{{0, "fail", BreakerClosed}, {1 * time.Second, "fail", BreakerClosed}, {2 * time.Second, "healthy", BreakerClosed}, {3 * time.Second, "fail", BreakerClosed}, {4 * time.Second, "fail", BreakerClosed}},
			transitions: "",
		},
		{
			name:        "third consecutive failure opens",
			steps:       []step{{0, "fail", BreakerClosed}, {time.Second, "fail", BreakerClosed}, {2 * time.Second, "fail", BreakerOpen}},
			transitions: "closed>open:failures",
		},
		{
			name:        "no healthy stream for the unhealthy period opens",
			steps:       []step{{19 * time.Second, "tick", BreakerClosed}, {20 * time.Second, "tick", BreakerOpen}},
			transitions: "closed>open:unhealthy",
		},
		{
			name:        "a healthy stream never opens on time alone",
			steps:       []step{{time.Second, "healthy", BreakerClosed}, {time.Hour, "tick", BreakerClosed}},
			transitions: "",
		},
		{
			name:        "unhealthy period counts from the last healthy moment",
			steps:       []step{{time.Second, "healthy", BreakerClosed}, {100 * time.Second, "fail", BreakerClosed}, {119 * time.Second, "tick", BreakerClosed}, {120 * time.Second, "tick", BreakerOpen}},
			transitions: "closed>open:unhealthy",
		},
		{
			name: "cool-down leads to half-open, a healthy probe closes",
			steps: []step{{0, "fail", BreakerClosed}, {0, "fail", BreakerClosed}, {0, "fail", BreakerOpen},
				{9 * time.Second, "tick", BreakerOpen}, {10 * time.Second, "tick", BreakerHalfOpen}, {11 * time.Second, "healthy", BreakerClosed}},
			transitions: "closed>open:failures open>half-open:cool_down half-open>closed:healthy",
		},
		{
			name: "a failed probe re-opens with a doubled cool-down",
			steps: []step{{0, "fail", BreakerClosed}, {0, "fail", BreakerClosed}, {0, "fail", BreakerOpen},
				{10 * time.Second, "tick", BreakerHalfOpen}, {11 * time.Second, "fail", BreakerOpen},
				{30 * time.Second, "tick", BreakerOpen}, {31 * time.Second, "tick", BreakerHalfOpen}},
			transitions: "closed>open:failures open>half-open:cool_down half-open>open:probe_failed open>half-open:cool_down",
		},
		{
			name: "the cool-down is capped",
			steps: []step{{0, "fail", BreakerClosed}, {0, "fail", BreakerClosed}, {0, "fail", BreakerOpen},
				{10 * time.Second, "tick", BreakerHalfOpen}, {10 * time.Second, "fail", BreakerOpen}, // next 20s
				{30 * time.Second, "tick", BreakerHalfOpen}, {30 * time.Second, "fail", BreakerOpen}, // next min(40s, 25s)
				{54 * time.Second, "tick", BreakerOpen}, {55 * time.Second, "tick", BreakerHalfOpen}},
			transitions: "closed>open:failures open>half-open:cool_down half-open>open:probe_failed open>half-open:cool_down half-open>open:probe_failed open>half-open:cool_down",
		},
		{
			name: "a probe that never becomes healthy times out",
			steps: []step{{0, "fail", BreakerClosed}, {0, "fail", BreakerClosed}, {0, "fail", BreakerOpen},
				{10 * time.Second, "tick", BreakerHalfOpen}, {14 * time.Second, "tick", BreakerHalfOpen}, {15 * time.Second, "tick", BreakerOpen}},
			transitions: "closed>open:failures open>half-open:cool_down half-open>open:probe_failed",
		},
		{
			name: "after closing, the cool-down is back to its base",
			steps: []step{{0, "fail", BreakerClosed}, {0, "fail", BreakerClosed}, {0, "fail", BreakerOpen},
				{10 * time.Second, "tick", BreakerHalfOpen}, {10 * time.Second, "fail", BreakerOpen},
				{30 * time.Second, "tick", BreakerHalfOpen}, {30 * time.Second, "healthy", BreakerClosed},
				{40 * time.Second, "fail", BreakerClosed}, {40 * time.Second, "fail", BreakerClosed}, {40 * time.Second, "fail", BreakerOpen},
				{49 * time.Second, "tick", BreakerOpen}, {50 * time.Second, "tick", BreakerHalfOpen}},
			transitions: "closed>open:failures open>half-open:cool_down half-open>open:probe_failed open>half-open:cool_down half-open>closed:healthy closed>open:failures open>half-open:cool_down",
		},
	}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			b := NewBreaker(cfg, t0, nil, func(tr Transition) {
				got = append(got, tr.From.String()+">"+tr.To.String()+":"+tr.Reason)
			})
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				switch s.event {
				case "fail":
					b.Failed(now)
				case "healthy":
					b.Healthy(now)
				case "tick":
					b.Tick(now)
				}
				if b.State() != s.want {
					t.Fatalf("step %d (%s at %v): state %v, want %v", i, s.event, s.at, b.State(), s.want)
				}
				if (b.State() == BreakerOpen) == b.AllowStream() {
					t.Fatalf("step %d: AllowStream %v in state %v", i, b.AllowStream(), b.State())
				}
			}
			if g := strings.Join(got, " "); g != tt.transitions {
				t.Errorf("transitions:\n got %q\nwant %q", g, tt.transitions)
			}
		})
	}
}

func TestBreakerDeadlineAndJitter(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	cfg := BreakerConfig{Failures: 1, CoolDown: settings.Duration(10 * time.Second), Jitter: 0.2}
	for _, tc := range []struct {
		rand float64
		want time.Duration
	}{{0, 8 * time.Second}, {0.5, 10 * time.Second}, {0.999999, 12 * time.Second}} {
		b := NewBreaker(cfg, t0, func() float64 { return tc.rand }, nil)
		if got := b.Deadline(); !got.Equal(t0.Add(20 * time.Second)) {
			t.Fatalf("closed unhealthy deadline %v, want t0+20s", got.Sub(t0))
		}
		b.Failed(t0)
		if got := b.Deadline().Sub(t0).Round(time.Millisecond); got != tc.want {
			t.Errorf("rand %v: probe after %v, want %v", tc.rand, got, tc.want)
		}
		if !b.ProbeAt().Equal(b.Deadline()) {
			t.Errorf("ProbeAt %v differs from Deadline %v", b.ProbeAt(), b.Deadline())
		}
	}
	b := NewBreaker(cfg, t0, nil, nil)
	b.Healthy(t0)
	if !b.Deadline().IsZero() {
		t.Errorf("healthy closed breaker has a deadline %v", b.Deadline())
	}
}

func TestBreakerConfigValidate(t *testing.T) {
	if err := (BreakerConfig{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := map[string]BreakerConfig{
		"failures":      {Failures: -1},
		"jitter":        {Jitter: 1.5},
		"max_cool_down": {CoolDown: settings.Duration(time.Minute), MaxCoolDown: time.Second},
		"unhealthy":     {OpenAfter: settings.Duration(-time.Second)},
	}
	for want, c := range bad {
		err := c.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want one naming %q", c, err, want)
		}
	}
}
