package wsrelay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/nellis-edge/gateway/users"
)

// The client message types (docs/protocol.md, Client messages), plus resume.
const (
	TypeAuthenticate         = "authenticate"
	TypeStartMonitoring      = "startMonitoring"
	TypeStopMonitoring       = "stopMonitoring"
	TypeUpdateConfig         = "updateConfig"
	TypePlaceBid             = "placeBid"
	TypeSubscribe            = "subscribe"
	TypeUnsubscribe          = "unsubscribe"
	TypeGetMonitoredAuctions = "getMonitoredAuctions"
	TypePing                 = "ping"
	TypeResume               = "resume"
)

// The error texts the extension knows.
const (
	errInvalidFormat   = "Invalid message format"
	errNotAuthed       = "Not authenticated"
	errInvalidToken    = "Invalid authentication token"
	errServerMisconfig = "Server configuration error"
	errBiddingDisabled = "bidding is disabled on this gateway"
)

// Limits of the protocol's values (docs/protocol.md, Limits and validation).
const (
	maxBidLimit       = 999999
	maxIncrement      = 1000
	maxSnipeSeconds   = users.MaxSnipeSeconds
	maxResumeAuctions = 1000
)

// ClientMessage is one decoded and validated client message. Only the
// fields of its Type are set.
type ClientMessage struct {
	Type      string
	RequestID json.RawMessage // echoed verbatim in the reply; nil when absent
	Token     string          // authenticate
	AuctionID string          // every auction message
	Config    *ConfigPatch    // startMonitoring, updateConfig
	Metadata  *Metadata       // startMonitoring
	Amount    float64         // placeBid
	Resume    map[string]ResumePoint
}

// ResumePoint is the last change a client saw of one auction.
type ResumePoint struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// ConfigPatch is a partial auction config; nil fields are left alone.
type ConfigPatch struct {
	MaxBid          *float64
	Strategy        *string
	IncrementAmount *float64
	AutoBid         *bool
	SnipeSeconds    *int
}

// Metadata describes an auction as the extension saw it on the page.
type Metadata struct {
	Source    string
	Title     string
	URL       string
	ImageURL  *string
	Timestamp float64
}

// ProtocolError is a client error with the text sent back to the client.
type ProtocolError struct {
	Text      string
	RequestID json.RawMessage
}

func (e *ProtocolError) Error() string { return e.Text }

// DecodeClientMessage decodes and validates one client message. A message
// that is not a JSON object yields "Invalid message format"; any other
// problem yields a ProtocolError carrying the request's requestId.
func DecodeClientMessage(data []byte) (*ClientMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return nil, &ProtocolError{Text: errInvalidFormat}
	}
	m := &ClientMessage{RequestID: requestID(fields["requestId"])}
	fail := func(format string, args ...any) (*ClientMessage, error) {
		return nil, &ProtocolError{Text: fmt.Sprintf(format, args...), RequestID: m.RequestID}
	}
	if err := json.Unmarshal(fields["type"], &m.Type); err != nil || m.Type == "" {
		return fail(errInvalidFormat)
	}
	var err error
	switch m.Type {
	case TypePing, TypeGetMonitoredAuctions:
	case TypeAuthenticate:
		if raw, ok := fields["token"]; ok && !isNull(raw) {
			if json.Unmarshal(raw, &m.Token) != nil {
				return fail("token must be a string")
			}
		}
	case TypeStartMonitoring:
		if m.AuctionID, err = decodeAuctionID(fields["auctionId"]); err != nil {
			return fail("%s", err)
		}
		if m.Config, err = decodeConfigPatch(fields["config"]); err != nil {
			return fail("%s", err)
		}
		if m.Metadata, err = decodeMetadata(fields["metadata"]); err != nil {
			return fail("%s", err)
		}
	case TypeUpdateConfig:
		if m.AuctionID, err = decodeAuctionID(fields["auctionId"]); err != nil {
			return fail("%s", err)
		}
		if m.Config, err = decodeConfigPatch(fields["config"]); err != nil {
			return fail("%s", err)
		}
		if m.Config == nil {
			return fail("config is required")
		}
	case TypeStopMonitoring, TypeSubscribe, TypeUnsubscribe:
		if m.AuctionID, err = decodeAuctionID(fields["auctionId"]); err != nil {
			return fail("%s", err)
		}
	case TypePlaceBid:
		if m.AuctionID, err = decodeAuctionID(fields["auctionId"]); err != nil {
			return fail("%s", err)
		}
		if m.Amount, err = decodeNumber(fields["amount"]); err != nil || m.Amount <= 0 || m.Amount > maxBidLimit {
			return fail("amount must be a number in (0, %d]", maxBidLimit)
		}
	case TypeResume:
		if m.Resume, err = decodeResume(fields["auctions"]); err != nil {
			return fail("%s", err)
		}
	default:
		return fail("Unknown message type: %s", quoteShort(m.Type))
	}
	return m, nil
}

// requestID keeps a string or number requestId verbatim; anything else is
// dropped, since echoing it could not resolve a request anyway.
func requestID(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	switch c := raw[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
		return raw
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func decodeAuctionID(raw json.RawMessage) (string, error) {
	var id string
	if isNull(raw) {
		return "", fmt.Errorf("auctionId is required")
	}
	if json.Unmarshal(raw, &id) != nil {
		// Tolerate a numeric id, the product id itself.
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "", fmt.Errorf("auctionId must be a string")
		}
		id = n.String()
	}
	if !users.ValidAuctionID(id) {
		return "", fmt.Errorf("auctionId must be 1-100 characters of A-Z, a-z, 0-9, _ or -")
	}
	return id, nil
}

// decodeNumber accepts a JSON number or a numeric string.
func decodeNumber(raw json.RawMessage) (float64, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("not a number")
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("not a number")
	}
	return f, nil
}

// strategies maps every accepted strategy to itself: older extensions send
// increment and manual, which are kept as sent, never rejected.
var strategies = map[string]bool{"auto": true, "sniping": true, "increment": true, "manual": true}

func decodeConfigPatch(raw json.RawMessage) (*ConfigPatch, error) {
	if isNull(raw) {
		return nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("config must be an object")
	}
	p := &ConfigPatch{}
	if v, ok := fields["maxBid"]; ok && !isNull(v) {
		f, err := decodeNumber(v)
		if err != nil || f <= 0 || f > maxBidLimit {
			return nil, fmt.Errorf("config.maxBid must be a number in (0, %d]", maxBidLimit)
		}
		p.MaxBid = &f
	}
	if v, ok := fields["incrementAmount"]; ok && !isNull(v) {
		f, err := decodeNumber(v)
		if err != nil || f <= 0 || f > maxIncrement {
			return nil, fmt.Errorf("config.incrementAmount must be a number in (0, %d]", maxIncrement)
		}
		p.IncrementAmount = &f
	}
	if v, ok := fields["strategy"]; ok && !isNull(v) {
		var s string
		if json.Unmarshal(v, &s) != nil || !strategies[s] {
			return nil, fmt.Errorf("config.strategy must be auto or sniping")
		}
		p.Strategy = &s
	}
	if v, ok := fields["autoBid"]; ok && !isNull(v) {
		var b bool
		if json.Unmarshal(v, &b) != nil {
			return nil, fmt.Errorf("config.autoBid must be true or false")
		}
		p.AutoBid = &b
	}
	if v, ok := fields["snipeSeconds"]; ok && !isNull(v) {
		f, err := decodeNumber(v)
		if err != nil || f != math.Trunc(f) || f < 1 || f > maxSnipeSeconds {
			return nil, fmt.Errorf("config.snipeSeconds must be a whole number of seconds in [1, %d]", maxSnipeSeconds)
		}
		n := int(f)
		p.SnipeSeconds = &n
	}
	return p, nil
}

func decodeMetadata(raw json.RawMessage) (*Metadata, error) {
	if isNull(raw) {
		return nil, nil
	}
	var w struct {
		Source    json.RawMessage `json:"source"`
		Title     json.RawMessage `json:"title"`
		URL       json.RawMessage `json:"url"`
		ImageURL  json.RawMessage `json:"imageUrl"`
		Timestamp json.RawMessage `json:"timestamp"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("metadata must be an object")
	}
	md := &Metadata{}
	if !isNull(w.Source) && json.Unmarshal(w.Source, &md.Source) != nil {
		return nil, fmt.Errorf("metadata.source must be a string")
	}
	if !isNull(w.Title) && json.Unmarshal(w.Title, &md.Title) != nil {
		return nil, fmt.Errorf("metadata.title must be a string")
	}
	if !isNull(w.URL) {
		if json.Unmarshal(w.URL, &md.URL) != nil || !isWebURL(md.URL) {
			return nil, fmt.Errorf("metadata.url must be an http or https URL")
		}
	}
	if !isNull(w.ImageURL) {
		var s string
		if json.Unmarshal(w.ImageURL, &s) != nil {
			return nil, fmt.Errorf("metadata.imageUrl must be a string")
		}
		md.ImageURL = &s
	}
	if !isNull(w.Timestamp) {
		f, err := decodeNumber(w.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("metadata.timestamp must be a number")
		}
		md.Timestamp = f
	}
	return md, nil
}

func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func decodeResume(raw json.RawMessage) (map[string]ResumePoint, error) {
	var points map[string]ResumePoint
	if isNull(raw) || json.Unmarshal(raw, &points) != nil || points == nil {
		return nil, fmt.Errorf(`auctions must be an object of {"<auctionId>":{"epoch":"…","seq":n}}`)
	}
	if len(points) > maxResumeAuctions {
		return nil, fmt.Errorf("auctions must list at most %d auctions", maxResumeAuctions)
	}
	for id := range points {
		if !users.ValidAuctionID(id) {
			return nil, fmt.Errorf("auctions: auction ids must be 1-100 characters of A-Z, a-z, 0-9, _ or -")
		}
	}
	return points, nil
}

// quoteShort quotes client text for an error message, cut to a sane length.
func quoteShort(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return strconv.Quote(s)
}

// productIDOf finds the Nellis product id: the auction id when it is all
// digits, else the digits ending the page URL (/p/<slug>/<digits>).
func productIDOf(auctionID, pageURL string) (int64, bool) {
	if id, ok := parseProductID(auctionID); ok {
		return id, true
	}
	if pageURL == "" {
		return 0, false
	}
	u, err := url.Parse(pageURL)
	if err != nil {
		return 0, false
	}
	path := strings.TrimRight(u.Path, "/")
	return parseProductID(path[strings.LastIndexByte(path, '/')+1:])
}

func parseProductID(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}
