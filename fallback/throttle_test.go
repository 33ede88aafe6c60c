package fallback_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/nellis"
)

func TestThrottled(t *testing.T) {
	for _, tc := range []struct {
		err   error
		want  bool
		after time.Duration
	}{
		{nil, false, 0},
		{errors.New("dial tcp: refused"), false, 0},
		{&nellis.StatusError{Code: 404}, false, 0},
		{&nellis.StatusError{Code: 500}, true, 0},
		{fmt.Errorf("wrapped: %w", &nellis.StatusError{Code: 429, RetryAfter: time.Second}), true, time.Second},
	} {
		got, after := fallback.Throttled(tc.err)
		if got != tc.want || after != tc.after {
			t.Errorf("fallback.Throttled(%v) = %v, %v; want %v, %v", tc.err, got, after, tc.want, tc.after)
		}
	}
}
