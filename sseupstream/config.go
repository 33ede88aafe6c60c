package sseupstream

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/clock"
	"github.com/nellis-edge/gateway/settings"
)

// Defaults for Config, chosen for Nellis: it pings about once a second, so
// three silent seconds mean the stream is dead even if TCP still looks fine.
const (
	DefaultStallTimeout = 3 * time.Second
	DefaultBackoffBase  = time.Second
	DefaultBackoffMax   = 15 * time.Second
	DefaultHealthyAfter = 30 * time.Second
	DefaultMaxEventSize = 1 << 20
)

// Timeouts of the default HTTP client. They bound each phase of connecting;
// the client has no overall Timeout because a stream is meant to last hours.
const (
	defaultDialTimeout           = 10 * time.Second
	defaultTLSHandshakeTimeout   = 10 * time.Second
	defaultResponseHeaderTimeout = 10 * time.Second
)

// Config tunes one product subscription. The zero value is usable after
// WithDefaults except for Endpoint, which is required. A field with a JSON
// name is a setting of the Caddy app's `nellis` block by that name.
type Config struct {
	// Endpoint is the base URL of the SSE service; the stream of a product is
	// Endpoint + "/live-products?productId=<id>". Required, e.g.
	// https://sse.nellisauction.com.
	Endpoint string `json:"-"`

	// HTTPClient makes the requests. It must have no overall Timeout, since
	// streams are long. Default: a client with dial, TLS-handshake and
	// response-header timeouts of 10 s. WithDefaults builds a new one per
	// call, so call it once and share the result to share connections.
	HTTPClient *http.Client `json:"-"`

	// StallTimeout is how long the stream may go without a single byte
	// (event, ping or comment) before it is dropped and reconnected.
	// Default: 3s.
	StallTimeout settings.Duration `json:"stall_timeout,omitempty"`

	// BackoffBase is the ceiling of the first retry delay; the n-th
	// consecutive failure waits rand[0, min(BackoffMax, BackoffBase*2^n)).
	// Default: 1s.
	BackoffBase settings.Duration `json:"backoff_base,omitempty"`

	// BackoffMax caps the retry delay. Default: 15s.
	BackoffMax settings.Duration `json:"backoff_max,omitempty"`

	// HealthyAfter is how long a stream must stay up for its end to count
	// as a fresh start rather than another failure (the backoff resets).
	// Default: 30s.
	HealthyAfter settings.Duration `json:"healthy_after,omitempty"`

	// MaxEventSize bounds one event as it appears on the wire (field names
	// and line ends included), in bytes. A larger event is reported as a
	// decode error and the connection is dropped and reopened, because the
	// reader cannot find the next event boundary without buffering the
	// oversized one. Default: 1 MiB.
	MaxEventSize int `json:"max_event_size,omitempty"`

	// Clock tells time and makes timers; tests substitute a fake.
	// Default: the real clock.
	Clock clock.Clock `json:"-"`

	// Logger receives the subscription's logs. Default: zap.NewNop().
	Logger *zap.Logger `json:"-"`

	// randInt64N returns a uniform number in [0, n); tests make it
	// deterministic. Default: math/rand/v2's Int64N.
	randInt64N func(n int64) int64
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.HTTPClient == nil {
		c.HTTPClient = newDefaultHTTPClient()
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = settings.Duration(DefaultStallTimeout)
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = settings.Duration(DefaultBackoffBase)
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = settings.Duration(DefaultBackoffMax)
	}
	if c.HealthyAfter == 0 {
		c.HealthyAfter = settings.Duration(DefaultHealthyAfter)
	}
	if c.MaxEventSize == 0 {
		c.MaxEventSize = DefaultMaxEventSize
	}
	if c.Clock == nil {
		c.Clock = clock.System{}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.randInt64N == nil {
		c.randInt64N = randInt64N
	}
	return c
}

// Validate reports the first setting that cannot work. It checks the
// configuration as given, so call it on the result of WithDefaults.
func (c Config) Validate() error {
	if c.Endpoint == "" {
		return errors.New("endpoint is required")
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		// url.Error repeats the whole URL, which may hold credentials.
		return errors.New("endpoint is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("endpoint scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("endpoint has no host")
	}
	if u.User != nil {
		return errors.New("endpoint must not carry user info")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("endpoint must not have a query or fragment")
	}
	if c.HTTPClient != nil && c.HTTPClient.Timeout != 0 {
		return fmt.Errorf("http client has an overall timeout of %s, which would cut every stream", c.HTTPClient.Timeout)
	}
	for _, d := range []struct {
		name  string
		value settings.Duration
	}{
		{"stall timeout", c.StallTimeout},
		{"backoff base", c.BackoffBase},
		{"backoff max", c.BackoffMax},
		{"healthy after", c.HealthyAfter},
	} {
		if d.value < 0 {
			return fmt.Errorf("%s must not be negative, got %s", d.name, d.value)
		}
	}
	if c.BackoffMax != 0 && c.BackoffBase > c.BackoffMax {
		return fmt.Errorf("backoff base %s exceeds backoff max %s", c.BackoffBase, c.BackoffMax)
	}
	if c.MaxEventSize < 0 {
		return fmt.Errorf("max event size must not be negative, got %d", c.MaxEventSize)
	}
	return nil
}

// streamURL is the stream of one product under endpoint.
func streamURL(endpoint string, productID int64) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", errors.New("endpoint is not a valid URL")
	}
	u = u.JoinPath("live-products")
	u.RawQuery = url.Values{"productId": {fmt.Sprint(productID)}}.Encode()
	return u.String(), nil
}

func newDefaultHTTPClient() *http.Client { return NewHTTPClient(nil) }
