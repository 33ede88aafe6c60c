package wsrelay

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestAPIAuthRefusesCookiesThatCannotBeSent: cookies the Nellis client
// would refuse get a clear 400 naming the problem, never quoting the
// value, and the cookies synced before stay in use.
func TestAPIAuthRefusesCookiesThatCannotBeSent(t *testing.T) {
	const secret = "s3cr3tvalue"
	f := newFixture(t, testConfig(), Options{})
	apiCall(t, f, "POST", "/api/auth", tokenAlice, `{"cookies":"sim_user=alice"}`, http.StatusOK)
	tests := []struct{ name, cookies, want string }{
		{"CR LF", "a=" + secret + "\r\nX-Injected: 1", "a line break"},
		{"NUL", "a=" + secret + "\x00", "a NUL byte"},
		{"control character", "a=" + secret + "\x1b", "a control character (0x1b)"},
		{"not name=value", "a=1; my " + secret, "cookie 2 is neither name=value nor a bare word"},
		{"bad name", "a b=" + secret, "cookie 1 has an empty name or one with a character"},
		{"over 8 KiB", "a=" + secret + strings.Repeat("x", 8<<10), "more than 8192"},
		{"too many pairs", strings.Repeat("k=v; ", 180) + "a=" + secret, "181 cookies, more than 180"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"cookies": tt.cookies})
			m := apiCall(t, f, "POST", "/api/auth", tokenAlice, string(body), http.StatusBadRequest)
			msg, _ := m["error"].(string)
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "kept") {
				t.Errorf("error %q, want it to say %q and that the old cookies are kept", msg, tt.want)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error quotes the cookies: %q", msg)
			}
			if got := f.relay.userCookies("alice"); got != "sim_user=alice" {
				t.Errorf("cookies now %q, want the ones synced before", got)
			}
		})
	}
}

// userCookies is a user's synced cookies, for tests.
func (r *Relay) userCookies(name string) string {
	return r.dir.Cookies(name).Cookies
}
