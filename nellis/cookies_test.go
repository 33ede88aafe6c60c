package nellis

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestCheckCookies(t *testing.T) {
	const secret = "s3cr3tvalue"
	many := strings.Repeat("a=1; ", MaxCookiePairs) + "b=" + secret
	tests := []struct {
		name, cookies, want string // want "" accepts
	}{
		{"none", "", ""},
		{"a session", "session=" + secret + "; _ga=GA1.2.3; cf_clearance=x-y_z.0", ""},
		{"quoted value and stray semicolons", `a="` + secret + `";; b=2;`, ""},
		{"a tab is a space to HTTP", "a=1;\tb=" + secret, ""},
		{"LF", "a=" + secret + "\nX-Evil: 1", "a line break (CR or LF) at byte 13"},
		{"CR", "a=" + secret + "\r", "a line break"},
		{"NUL", "a=" + secret + "\x00", "a NUL byte"},
		{"other control character", "a=" + secret + "\x01", "a control character (0x01)"},
		{"DEL", "a=" + secret + "\x7f", "a control character (0x7f)"},
		{"a bare value", "a=1; " + secret, ""},
		{"not a cookie", "a=1; my " + secret, "cookie 2 is neither name=value nor a bare word"},
		{"empty name", "=" + secret, "cookie 1 has an empty name"},
		{"space in a name", "my name=" + secret, "cookie 1 has an empty name or one with a character"},
		{"too long", "a=" + strings.Repeat("x", MaxCookieBytes), "more than 8192"},
		{"too many", many, "181 cookies, more than 180"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckCookies(tt.cookies)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrBadCookies) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want ErrBadCookies saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes the cookies: %v", err)
			}
		})
	}
}

// TestSnapshotRefusesBadCookiesBeforeSending: the client refuses what
// CheckCookies refuses without a request, and the error says so without
// the cookies.
func TestSnapshotRefusesBadCookiesBeforeSending(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	c, err := NewClient(ClientConfig{APIEndpoint: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Snapshot(context.Background(), 7, "a=secretvalue\x01")
	if !errors.Is(err, ErrBadCookies) || strings.Contains(err.Error(), "secretvalue") {
		t.Fatalf("error %v, want ErrBadCookies without the value", err)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}
