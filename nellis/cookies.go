package nellis

import (
	"errors"
	"fmt"
	"strings"
)

// Limits of a Cookie header the gateway sends to Nellis. Common servers
// refuse a request header over 8 KiB, and a browser keeps at most 180
// cookies for a site.
const (
	MaxCookieBytes = 8 << 10
	MaxCookiePairs = 180
)

// ErrBadCookies marks cookies that cannot be sent (CheckCookies).
var ErrBadCookies = errors.New("cookies cannot be sent")

// CheckCookies reports why cookies, a Cookie header value ("a=b; c=d"),
// cannot be sent: over MaxCookieBytes or MaxCookiePairs, a byte Go's HTTP
// client refuses in a header (CR, LF, NUL, any other control character but
// tab), or a part that is neither name=value with a token for a name nor
// a bare token (a cookie without a name, as browsers send it). The
// error says what is wrong and where, never the value. "" is nil: no
// cookies to send.
func CheckCookies(cookies string) error {
	if len(cookies) > MaxCookieBytes {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrBadCookies, len(cookies), MaxCookieBytes)
	}
	for i := 0; i < len(cookies); i++ {
		switch b := cookies[i]; {
		case b == '\r' || b == '\n':
			return fmt.Errorf("%w: a line break (CR or LF) at byte %d", ErrBadCookies, i)
		case b == 0:
			return fmt.Errorf("%w: a NUL byte at byte %d", ErrBadCookies, i)
		case (b < 0x20 && b != '\t') || b == 0x7f:
			return fmt.Errorf("%w: a control character (0x%02x) at byte %d", ErrBadCookies, b, i)
		}
	}
	pairs := 0
	for part := range strings.SplitSeq(cookies, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		pairs++
		name, _, ok := strings.Cut(part, "=")
		if !ok {
			// A browser sends a cookie without a name as its bare value.
			if !validCookieName(part) {
				return fmt.Errorf("%w: cookie %d is neither name=value nor a bare word", ErrBadCookies, pairs)
			}
			continue
		}
		if name = strings.TrimSpace(name); !validCookieName(name) {
			return fmt.Errorf("%w: cookie %d has an empty name or one with a character a name cannot have", ErrBadCookies, pairs)
		}
	}
	if pairs > MaxCookiePairs {
		return fmt.Errorf("%w: %d cookies, more than %d", ErrBadCookies, pairs, MaxCookiePairs)
	}
	return nil
}

// validCookieName reports whether name is an HTTP token (RFC 6265 §4.1.1).
func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, b) >= 0 {
			return false
		}
	}
	return true
}
