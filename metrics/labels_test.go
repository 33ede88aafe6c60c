package metrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/nellis"
)

func TestPollResultLabel(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{fmt.Errorf("nellis: json snapshot: %w", &nellis.StatusError{Code: 404}), "status_4xx"},
		{&nellis.StatusError{Code: 429}, "status_4xx"},
		{&nellis.StatusError{Code: 502}, "status_5xx"},
		{&nellis.StatusError{Code: 304}, "status_other"},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), "timeout"},
		{context.Canceled, "canceled"},
		{errors.New("connection refused"), "error"},
		{nellis.ErrBodyTooLarge, "error"},
	}
	for _, tt := range tests {
		if got := pollResultLabel(tt.err); got != tt.want {
			t.Errorf("pollResultLabel(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if !slices.Contains(pollResults, tt.want) {
			t.Errorf("%q is not a pre-created poll result", tt.want)
		}
	}
}

func TestCloseCodeLabel(t *testing.T) {
	tests := map[int]string{
		1000: "1000", 1001: "1001", 1006: "1006", 1015: "1015",
		1016: "other", 3000: "3xxx", 4008: "4xxx", 4999: "4xxx",
		5000: "other", 0: "other", -1: "other",
	}
	for code, want := range tests {
		if got := closeCodeLabel(code); got != want {
			t.Errorf("closeCodeLabel(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestHTTPStatusLabel(t *testing.T) {
	tests := map[int]string{403: "403", 429: "429", 503: "503", 99: "other", 600: "other", 0: "other"}
	for status, want := range tests {
		if got := httpStatusLabel(status); got != want {
			t.Errorf("httpStatusLabel(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestBreakerStateLabel(t *testing.T) {
	tests := map[fallback.BreakerState]string{
		fallback.BreakerClosed:   "closed",
		fallback.BreakerOpen:     "open",
		fallback.BreakerHalfOpen: "half-open",
		fallback.BreakerState(9): "other",
	}
	for s, want := range tests {
		if got := breakerStateLabel(s); got != want {
			t.Errorf("breakerStateLabel(%d) = %q, want %q", s, got, want)
		}
	}
}
