package fallback

import (
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

func TestScheduleNext(t *testing.T) {
	s := Schedule{}
	tests := []struct {
		name string
		sit  Situation
		want time.Duration
		poll bool
	}{
		{"stream down, far from close", Situation{CloseKnown: true, TimeLeft: time.Hour}, 2 * time.Second, true},
		{"stream down, close unknown", Situation{}, 2 * time.Second, true},
		{"stream down, closing window", Situation{CloseKnown: true, TimeLeft: 60 * time.Second}, time.Second, true},
		{"stream down, past close but not confirmed", Situation{CloseKnown: true, TimeLeft: 0}, time.Second, true},
		{"stream healthy: safety net", Situation{StreamHealthy: true, CloseKnown: true, TimeLeft: 61 * time.Second}, 30 * time.Second, true},
		{"stream healthy: closing hedge", Situation{StreamHealthy: true, CloseKnown: true, TimeLeft: 10 * time.Second}, 2 * time.Second, true},
		{"over: stop", Situation{Over: true, StreamHealthy: true}, 0, false},
	}
	for _, tt := range tests {
		got, poll := s.Next(tt.sit)
		if got != tt.want || poll != tt.poll {
			t.Errorf("%s: Next = %v, %v; want %v, %v", tt.name, got, poll, tt.want, tt.poll)
		}
	}
}

func TestScheduleJitterSpreadsWithinTenPercent(t *testing.T) {
	for _, tc := range []struct {
		rand float64
		want time.Duration
	}{{0, 27 * time.Second}, {0.5, 30 * time.Second}, {0.75, 31500 * time.Millisecond}} {
		s := Schedule{Rand: func() float64 { return tc.rand }}
		got, _ := s.Next(Situation{StreamHealthy: true})
		if got.Round(time.Millisecond) != tc.want {
			t.Errorf("rand %v: %v, want %v", tc.rand, got, tc.want)
		}
	}
}

func TestScheduleCustomConfig(t *testing.T) {
	s := Schedule{Config: ScheduleConfig{Fallback: settings.Duration(5 * time.Second), ClosingWindow: settings.Duration(10 * time.Second)}}
	if got, _ := s.Next(Situation{CloseKnown: true, TimeLeft: 30 * time.Second}); got != 5*time.Second {
		t.Errorf("fallback interval %v, want 5s", got)
	}
	if got, _ := s.Next(Situation{CloseKnown: true, TimeLeft: 10 * time.Second}); got != time.Second {
		t.Errorf("closing interval %v, want 1s", got)
	}
	err := ScheduleConfig{Hedge: settings.Duration(-time.Second), Jitter: 2}.WithDefaults().Validate()
	if err == nil || !strings.Contains(err.Error(), "hedge") || !strings.Contains(err.Error(), "jitter") {
		t.Errorf("Validate: %v, want errors naming hedge and jitter", err)
	}
}
