package nellis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Client defaults.
const (
	DefaultAPIEndpoint = "https://www.nellisauction.com"
	DefaultUserAgent   = "nellis-edge-gateway/1"
	// DefaultTimeout bounds one request when the caller gives no HTTPClient.
	DefaultTimeout = 20 * time.Second
	// MaxBodyBytes caps a snapshot response; a product page is about 100 KiB.
	MaxBodyBytes = 8 << 20
)

// ErrBodyTooLarge marks a response larger than MaxBodyBytes.
var ErrBodyTooLarge = errors.New("response body too large")

// autoOrder is the order in which FormatAuto tries the formats: the cheapest
// first, the page that public scrapers rely on last.
var autoOrder = [...]string{FormatJSON, FormatData, FormatHTML}

// ClientConfig configures a Client. A field with a JSON name is a setting
// of the Caddy app's `nellis` block by that name.
type ClientConfig struct {
	// APIEndpoint is the site's base URL. Default: DefaultAPIEndpoint.
	APIEndpoint string `json:"-"`
	// HTTPClient sends the requests. Default: a client with DefaultTimeout.
	HTTPClient *http.Client `json:"-"`
	// Format is the snapshot format to fetch: "auto", "json", "data" or
	// "html". Auto tries json, data and html in turn and keeps using the
	// first that works until it fails. Default: auto.
	Format string `json:"snapshot_format,omitempty"`
	// UserAgent is sent with every request. Default: DefaultUserAgent.
	UserAgent string `json:"-"`
	// Logger receives format switches. Default: zap.NewNop().
	Logger *zap.Logger `json:"-"`
}

// Client fetches product snapshots from Nellis. It is safe for concurrent
// use; it starts no goroutines.
type Client struct {
	base *url.URL
	http *http.Client
	// bidHTTP is http that never follows a redirect: a bid POST answered
	// with one (an expired session sent to the login page) must be seen as
	// such, not as the 200 of the page it points to.
	bidHTTP   *http.Client
	format    string
	userAgent string
	logger    *zap.Logger
	now       func() time.Time

	// preferred is the index in autoOrder of the format that last worked.
	preferred atomic.Int32
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	endpoint := cfg.APIEndpoint
	if endpoint == "" {
		endpoint = DefaultAPIEndpoint
	}
	base, err := url.Parse(endpoint)
	// The endpoint is not echoed: it could carry credentials.
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errors.New("nellis: api endpoint must be an absolute http or https URL")
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, errors.New("nellis: api endpoint must not have a query or fragment")
	}
	c := &Client{
		base:      base,
		http:      cfg.HTTPClient,
		format:    cfg.Format,
		userAgent: cfg.UserAgent,
		logger:    cfg.Logger,
		now:       time.Now,
	}
	switch c.format {
	case "":
		c.format = FormatAuto
	case FormatAuto, FormatJSON, FormatData, FormatHTML:
	default:
		return nil, fmt.Errorf("nellis: unknown snapshot format %q (want auto, json, data or html)", cfg.Format)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultTimeout}
	}
	bid := *c.http
	bid.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.bidHTTP = &bid
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.logger == nil {
		c.logger = zap.NewNop()
	}
	return c, nil
}

// Snapshot fetches the full state of a product. cookies is the user's
// Cookie header for the site, sent only when not empty; it never appears in
// an error. A non-2xx answer is a *StatusError.
func (c *Client) Snapshot(ctx context.Context, productID int64, cookies string) (Snapshot, error) {
	if err := checkWantID(productID); err != nil {
		return Snapshot{}, err
	}
	if err := CheckCookies(cookies); err != nil {
		return Snapshot{}, fmt.Errorf("nellis: snapshot: %w", err)
	}
	if c.format != FormatAuto {
		snap, err := c.fetch(ctx, c.format, productID, cookies)
		return snap, redact(err, cookies)
	}
	// The format that last worked goes first; the others follow in the
	// documented order, json → data → html.
	start := int(c.preferred.Load())
	order := make([]int, 0, len(autoOrder))
	order = append(order, start)
	for i := range autoOrder {
		if i != start {
			order = append(order, i)
		}
	}
	var errs []error
	for _, i := range order {
		snap, err := c.fetch(ctx, autoOrder[i], productID, cookies)
		if err == nil {
			if i != start && c.preferred.CompareAndSwap(int32(start), int32(i)) {
				c.logger.Info("snapshot format switched",
					zap.String("from", autoOrder[start]),
					zap.String("to", autoOrder[i]),
					zap.Int64("product_id", productID))
			}
			return snap, nil
		}
		errs = append(errs, redact(err, cookies))
		if !worthAnotherFormat(ctx, err) {
			break
		}
	}
	if len(errs) == 1 {
		return Snapshot{}, errs[0]
	}
	return Snapshot{}, attemptErrors(errs)
}

// worthAnotherFormat reports whether a failed fetch should be retried in the
// next format. After a cancelled context, a 429 or any answer with
// Retry-After, more requests would only be refused: the caller must back
// off. A plain 5xx is tried elsewhere, since one broken route (the legacy
// ?_data= one, say) must not pin auto to a format that no longer works.
func worthAnotherFormat(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var status *StatusError
	if errors.As(err, &status) {
		return status.Code != http.StatusTooManyRequests && status.RetryAfter == 0
	}
	return true
}

// PreferredFormat is the format Snapshot tries first: the configured one,
// or in auto mode the one that last worked, for status output.
func (c *Client) PreferredFormat() string {
	if c.format != FormatAuto {
		return c.format
	}
	return autoOrder[c.preferred.Load()]
}

// CloseIdleConnections closes the idle connections of the HTTP client.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// snapshotURL builds the URL of a product in a format. The slug is
// irrelevant to the site, so it is always "x"; the ?_data= route id is
// sent with literal '$', as the site's own client did.
func (c *Client) snapshotURL(format string, productID int64) string {
	u := *c.base
	id := strconv.FormatInt(productID, 10)
	switch format {
	case FormatJSON:
		u.Path = path.Join("/", u.Path, "p", "x", id)
		u.RawQuery = "_data=routes/p.$title.$productId._index"
	case FormatData:
		u.Path = path.Join("/", u.Path, "p", "x", id+".data")
		u.RawQuery = "_routes=routes%2Fp.%24title.%24productId._index"
	default:
		u.Path = path.Join("/", u.Path, "p", "x", id)
	}
	u.RawPath = ""
	return u.String()
}

// acceptHeader is what each format asks for.
var acceptHeader = map[string]string{
	FormatJSON: "application/json",
	FormatData: "text/x-script, */*;q=0.8",
	FormatHTML: "text/html,application/xhtml+xml",
}

func (c *Client) fetch(ctx context.Context, format string, productID int64, cookies string) (Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.snapshotURL(format, productID), nil)
	if err != nil {
		return Snapshot{}, fmt.Errorf("nellis: %s snapshot: %w", format, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", acceptHeader[format])
	if cookies != "" {
		req.Header.Set("Cookie", cookies)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Snapshot{}, fmt.Errorf("nellis: %s snapshot: %w", format, err)
	}
	defer resp.Body.Close()
	receivedAt := c.now()
	serverDate, _ := http.ParseTime(resp.Header.Get("Date"))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return Snapshot{}, fmt.Errorf("nellis: %s snapshot: %w", format, &StatusError{
			Code:       resp.StatusCode,
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), serverDate, receivedAt),
		})
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return Snapshot{}, fmt.Errorf("nellis: %s snapshot: reading body: %w", format, err)
	}
	if len(body) > MaxBodyBytes {
		return Snapshot{}, fmt.Errorf("nellis: %s snapshot: %w: more than %d bytes", format, ErrBodyTooLarge, MaxBodyBytes)
	}

	var snap Snapshot
	switch format {
	case FormatJSON:
		// Since single fetch the route may answer 200 with an empty body,
		// or with the HTML page: only real JSON is the old answer.
		if err := checkLegacyJSON(resp, body); err != nil {
			return Snapshot{}, err
		}
		snap, err = DecodeSnapshotJSON(body, productID)
	case FormatData:
		snap, err = DecodeSnapshotData(body, productID)
	default:
		snap, err = DecodeSnapshotHTML(body, productID)
	}
	if err != nil {
		return Snapshot{}, err
	}
	snap.ServerDate, snap.ReceivedAt = serverDate, receivedAt
	return snap, nil
}

func checkLegacyJSON(resp *http.Response, body []byte) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("nellis: json snapshot: %w: status %d, want 200", ErrNoData, resp.StatusCode)
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType != "application/json" {
		return fmt.Errorf("nellis: json snapshot: %w: content type %q, want application/json", ErrNoData, truncate(mediaType, 60))
	}
	if len(body) == 0 {
		return fmt.Errorf("nellis: json snapshot: %w: empty body", ErrNoData)
	}
	return nil
}

// attemptErrors is the failure of every format FormatAuto tried.
type attemptErrors []error

func (e attemptErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e attemptErrors) Unwrap() []error { return e }
