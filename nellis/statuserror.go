package nellis

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StatusError is a non-2xx answer. The poller slows down on 429 and 5xx,
// using RetryAfter when the server gave one.
type StatusError struct {
	Code int
	// RetryAfter is the server's Retry-After, zero when absent or invalid.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("status %d %s", e.Code, http.StatusText(e.Code))
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date,
// which is measured against the server's own Date when it sent one so that
// clock skew does not distort it.
func retryAfter(header string, serverDate, now time.Time) time.Duration {
	header = strings.TrimSpace(header)
	if header == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(header, 10, 64); err == nil {
		if secs <= 0 || secs > int64(24*time.Hour/time.Second) {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	at, err := http.ParseTime(header)
	if err != nil {
		return 0
	}
	from := now
	if !serverDate.IsZero() {
		from = serverDate
	}
	if d := at.Sub(from); d > 0 && d <= 24*time.Hour {
		return d
	}
	return 0
}

var _ error = (*StatusError)(nil)
