package fallback

import (
	"errors"
	"net/http"
	"time"

	"github.com/nellis-edge/gateway/nellis"
)

// Throttled reports whether err is Nellis asking us to slow down (429 or any
// 5xx), and the Retry-After it sent, if any.
func Throttled(err error) (bool, time.Duration) {
	var se *nellis.StatusError
	if !errors.As(err, &se) {
		return false, 0
	}
	if se.Code == http.StatusTooManyRequests || se.Code >= 500 {
		return true, se.RetryAfter
	}
	return false, 0
}
