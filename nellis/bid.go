package nellis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// BidOutcome classifies the answer to a bid (docs/protocol.md, Placing a bid).
type BidOutcome string

// The outcomes of a bid.
const (
	// BidAccepted: the bid stands and, as far as Nellis said, leads.
	BidAccepted BidOutcome = "accepted"
	// BidOutbid: accepted, but another user's maximum (proxy) bid is
	// higher, so the user is not winning.
	BidOutbid BidOutcome = "outbid"
	// BidTooLow: below the next bid (400).
	BidTooLow BidOutcome = "too_low"
	// BidDuplicate: the user already bid this amount (409).
	BidDuplicate BidOutcome = "duplicate"
	// BidEnded: the auction is over (410).
	BidEnded BidOutcome = "ended"
	// BidAuthRequired: the cookies are missing or expired (401, 403).
	BidAuthRequired BidOutcome = "auth_required"
	// BidRejected: any other refusal (an unknown product, a malformed
	// request); sending it again would be refused again.
	BidRejected BidOutcome = "rejected"
	// BidUpstreamError: no usable answer (network error, 5xx, 429); the
	// bid may or may not have been placed.
	BidUpstreamError BidOutcome = "upstream_error"
)

// Placed reports whether Nellis accepted the bid, winning or not.
func (o BidOutcome) Placed() bool { return o == BidAccepted || o == BidOutbid }

// The headers the site's own bid request carries (the predecessor's
// placeBid), which is what the endpoint is known to accept.
const (
	bidUserAgent      = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
	bidContentType    = "text/plain;charset=UTF-8"
	bidAcceptLanguage = "en-US,en;q=0.9"
	// maxBidAnswer caps the answer read; Nellis's is a few hundred bytes.
	maxBidAnswer = 64 << 10
	// MaxBidAmount is the largest bid the client sends, the extension's
	// own maximum.
	MaxBidAmount = 999_999
)

// outbidPhrase in a 2xx message means the bid was accepted but a proxy bid
// beat it.
const outbidPhrase = "another user has a higher maximum bid"

// BidData is the lot's state after an accepted bid, as Nellis reports it.
// A zero field was not in the answer.
type BidData struct {
	BidCount         int
	CurrentAmount    float64
	MinimumNextBid   float64
	WinningBidUserID int64
	BidderCount      int
	// ProjectNewCloseTime is the lot's close time after the bid, by
	// Nellis's clock.
	ProjectNewCloseTime time.Time
	// ProjectExtended: the bid moved the close time (soft close).
	ProjectExtended bool
}

// BidResult is the classified answer to one bid.
type BidResult struct {
	Outcome BidOutcome
	// Status is the HTTP status, 0 when no answer arrived.
	Status int
	// Message is Nellis's message, or what went wrong; it never holds the
	// cookies.
	Message string
	// Retryable: sending again may work (network error, 5xx, 429).
	Retryable bool
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
	// Body is Nellis's answer when it is a JSON object, nil otherwise.
	Body json.RawMessage
	// Data is read from an accepted bid's answer.
	Data BidData
	// ServerDate is the answer's Date header (Nellis's clock, whole
	// seconds), zero when absent.
	ServerDate time.Time
	// SentAt and ReceivedAt bracket the request by the local clock; with
	// ServerDate they bound the offset between the two clocks.
	SentAt, ReceivedAt time.Time
}

// PlaceBid bids amount whole dollars on productID with the user's cookies
// (the site's Cookie header), as the site does: POST {api}/api/bids.
// Every answer, and a failure to get one, is classified in the BidResult; an
// error means the bid was not sent because its input is invalid. Neither
// ever contains the cookies.
func (c *Client) PlaceBid(ctx context.Context, productID int64, amount int, cookies string) (BidResult, error) {
	switch {
	case productID <= 0:
		return BidResult{}, fmt.Errorf("nellis: invalid product id %d", productID)
	case amount <= 0 || amount > MaxBidAmount:
		return BidResult{}, fmt.Errorf("nellis: bid %d is out of range (1 to %d whole dollars)", amount, MaxBidAmount)
	case strings.TrimSpace(cookies) == "":
		return BidResult{}, errors.New("nellis: a bid needs the user's cookies")
	case strings.ContainsAny(cookies, "\r\n\x00"):
		return BidResult{}, errors.New("nellis: cookies contain a control character")
	}
	body, _ := json.Marshal(struct {
		ProductID int64 `json:"productId"`
		Bid       int   `json:"bid"`
	}{productID, amount})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.siteURL("api", "bids"), bytes.NewReader(body))
	if err != nil {
		return BidResult{}, fmt.Errorf("nellis: bid request: %w", redact(err, cookies))
	}
	ua := c.userAgent
	if ua == DefaultUserAgent {
		ua = bidUserAgent
	}
	h := req.Header
	h.Set("User-Agent", ua)
	h.Set("Accept", "*/*")
	h.Set("Accept-Language", bidAcceptLanguage)
	h.Set("Content-Type", bidContentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("Cookie", cookies)
	h.Set("Origin", c.origin())
	h.Set("Referer", c.siteURL("p", "product", strconv.FormatInt(productID, 10)))

	res := BidResult{SentAt: c.now()}
	resp, err := c.bidHTTP.Do(req)
	if err != nil {
		res.ReceivedAt = c.now()
		res.Outcome = BidUpstreamError
		res.Message = redact(fmt.Errorf("bid request failed: %w", err), cookies).Error()
		// A cancelled bid was given up on by the caller: sending it again
		// is the caller's decision, not the transport's.
		res.Retryable = ctx.Err() == nil
		return res, nil
	}
	defer resp.Body.Close()
	res.ReceivedAt = c.now()
	res.Status = resp.StatusCode
	res.ServerDate, _ = http.ParseTime(resp.Header.Get("Date"))
	res.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), res.ServerDate, res.ReceivedAt)

	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBidAnswer+1))
	if err != nil || len(raw) > maxBidAnswer {
		res.Outcome, res.Retryable = BidUpstreamError, true
		res.Message = fmt.Sprintf("bid answer with status %d could not be read", resp.StatusCode)
		if err != nil {
			res.Message += ": " + redact(err, cookies).Error()
		}
		return res, nil
	}
	classifyBid(&res, raw, resp.Header.Get("Location"), cookies)
	return res, nil
}

// classifyBid fills res from the answer: the message text first, since it
// is what Nellis documents, then the status. location is the answer's
// Location header.
func classifyBid(res *BidResult, raw []byte, location, cookies string) {
	o, isObject := decodeAnswer(raw)
	if isObject && !containsSecret(raw, cookies) {
		res.Body = json.RawMessage(bytes.TrimSpace(raw))
	}
	res.Message = answerMessage(o)
	if res.Message != "" {
		res.Message = redact(errors.New(res.Message), cookies).Error()
	}
	status := res.Status
	if status >= 200 && status <= 299 && o["success"] == false {
		// A refusal dressed as a success: its words say what it is.
		res.Outcome = BidRejected
		if outcome, ok := outcomeFromMessage(res.Message); ok {
			res.Outcome = outcome
		}
		if res.Message == "" {
			res.Message = "bid refused"
		}
		return
	}
	if status >= 200 && status <= 299 {
		d, ok := successData(o)
		if !ok {
			// A page or an unknown answer is not proof that the bid stands:
			// the user must not be told it does.
			res.Outcome, res.Body = BidUpstreamError, nil
			res.Message = fmt.Sprintf("bid answer with status %d is not a recognised success", status)
			return
		}
		res.Outcome, res.Data = BidAccepted, readBidData(d)
		if strings.Contains(strings.ToLower(res.Message), outbidPhrase) {
			res.Outcome = BidOutbid
		}
		if res.Message == "" {
			res.Message = "bid placed"
		}
		return
	}
	if status >= 300 && status <= 399 {
		// Bids never follow redirects. The site sends an expired session to
		// its login page; any other redirect is not an answer about the bid,
		// which was not placed.
		res.Outcome, res.Body = BidUpstreamError, nil
		res.Message = fmt.Sprintf("bid answered with a redirect (status %d)", status)
		if redirectsToLogin(location) {
			res.Outcome = BidAuthRequired
			res.Message = fmt.Sprintf("authentication required: bid redirected to the login page (status %d)", status)
		}
		return
	}
	if res.Message == "" {
		res.Message = fmt.Sprintf("status %d %s", status, http.StatusText(status))
	}
	if outcome, ok := outcomeFromMessage(res.Message); ok && status < 500 {
		res.Outcome = outcome
		return
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		res.Outcome = BidAuthRequired
	case status == http.StatusConflict:
		res.Outcome = BidDuplicate
	case status == http.StatusGone:
		res.Outcome = BidEnded
	case status == http.StatusBadRequest:
		res.Outcome = BidTooLow
	case status == http.StatusTooManyRequests || status >= 500:
		res.Outcome, res.Retryable = BidUpstreamError, true
	default:
		res.Outcome = BidRejected
	}
}

// successKeys are the fields of an accepted bid's data (docs/protocol.md, Placing a bid).
var successKeys = [...]string{"bidCount", "currentAmount", "minimumNextBid", "winningBidUserId",
	"bidderCount", "projectNewCloseTime", "projectExtended"}

// successData is the data of an answer of the documented success shape,
// {"message":"…","data":{"bidCount",…}}: a message and a data object with
// at least one of its fields. Nothing else proves the bid stands.
func successData(o object) (object, bool) {
	if msg, ok := o["message"].(string); !ok || strings.TrimSpace(msg) == "" {
		return nil, false
	}
	d, ok := o["data"].(map[string]any)
	if !ok {
		return nil, false
	}
	for _, k := range successKeys {
		if _, ok := d[k]; ok {
			return object(d), true
		}
	}
	return nil, false
}

// redirectsToLogin reports whether a redirect's target is a sign-in page.
func redirectsToLogin(location string) bool {
	l := strings.ToLower(location)
	for _, word := range []string{"login", "log-in", "signin", "sign-in", "auth"} {
		if strings.Contains(l, word) {
			return true
		}
	}
	return false
}

// outcomeFromMessage recognises the refusals Nellis words (docs/protocol.md, Placing a bid,
// and the predecessor's matching).
func outcomeFromMessage(msg string) (BidOutcome, bool) {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "same price"):
		return BidDuplicate, true
	case strings.Contains(m, "too low") || strings.Contains(m, "minimum bid"):
		return BidTooLow, true
	case strings.Contains(m, "has ended") || strings.Contains(m, "auction ended") || strings.Contains(m, "closed"):
		return BidEnded, true
	case strings.Contains(m, "authentication") || strings.Contains(m, "log in") || strings.Contains(m, "login"):
		return BidAuthRequired, true
	}
	return "", false
}

// containsSecret reports whether an answer echoes the cookies or one of
// their values; such an answer is never passed on.
func containsSecret(raw []byte, cookies string) bool {
	for _, secret := range cookieSecrets(cookies) {
		if bytes.Contains(raw, []byte(secret)) {
			return true
		}
	}
	return false
}

func decodeAnswer(raw []byte) (object, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil || v == nil {
		return object{}, false
	}
	return object(v), true
}

// answerMessage is the answer's text: "message", or "error" as some
// refusals put it, possibly nested as {"error":{"message":…}}.
func answerMessage(o object) string {
	for _, key := range []string{"message", "error"} {
		switch v := o[key].(type) {
		case string:
			if s := strings.TrimSpace(v); s != "" {
				return truncate(s, 200)
			}
		case map[string]any:
			if s, ok := v["message"].(string); ok && strings.TrimSpace(s) != "" {
				return truncate(strings.TrimSpace(s), 200)
			}
		}
	}
	return ""
}

// readBidData reads what it can: a missing or odd field stays zero, since
// the bid itself stands whatever its answer's details look like.
func readBidData(o object) BidData {
	var d BidData
	if _, v, ok := o.first("bidCount"); ok {
		d.BidCount, _ = countField("bidCount", v)
	}
	if _, v, ok := o.first("currentAmount", "currentPrice", "currentBid"); ok {
		d.CurrentAmount, _ = amountField("currentAmount", v)
	}
	if _, v, ok := o.first("minimumNextBid", "nextBid"); ok {
		d.MinimumNextBid, _ = amountField("minimumNextBid", v)
	}
	if _, v, ok := o.first("winningBidUserId"); ok {
		if f, ok := numberValue(v); ok && f == math.Trunc(f) && f > 0 && f < 1<<53 {
			d.WinningBidUserID = int64(f)
		}
	}
	if _, v, ok := o.first("bidderCount"); ok {
		d.BidderCount, _ = countField("bidderCount", v)
	}
	if _, v, ok := o.first("projectNewCloseTime"); ok {
		d.ProjectNewCloseTime, _ = parseTimeValue(v)
	}
	if _, v, ok := o.first("projectExtended"); ok {
		d.ProjectExtended, _ = boolField("projectExtended", v)
	}
	return d
}

// siteURL is a path on the site, below the endpoint's own path.
func (c *Client) siteURL(parts ...string) string {
	u := *c.base
	u.Path = path.Join(append([]string{"/", u.Path}, parts...)...)
	u.RawPath, u.RawQuery, u.Fragment, u.User = "", "", "", nil
	return u.String()
}

// origin is the site's origin, as a browser sends it.
func (c *Client) origin() string {
	u := url.URL{Scheme: c.base.Scheme, Host: c.base.Host}
	return u.String()
}
