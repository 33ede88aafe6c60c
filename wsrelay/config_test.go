package wsrelay

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

func TestNewRejectsBadConfig(t *testing.T) {
	tests := map[string]Config{
		"bad user name":              {Users: map[string]string{"../x": "t"}},
		"empty token":                {Users: map[string]string{"a": ""}},
		"shared token":               {Users: map[string]string{"a": "t", "b": "t"}},
		"short key":                  {CookieKey: "abcd"},
		"negative limit":             {MaxMessageSize: -1},
		"negative sockets per user":  {MaxSocketsPerUser: -1},
		"negative products per user": {MaxProductsPerUser: -1},
		"slow heartbeat":             {HeartbeatInterval: settings.Duration(25 * time.Second)},
		"blank origin":               {AllowedOrigins: []string{""}},
		"blank token":                {Users: map[string]string{"a": " \t "}},
		"padded token":               {Users: map[string]string{"a": " a-long-enough-token "}},

		"negative per-address cap":      {MaxUnauthenticatedPerAddress: -1},
		"negative auth timeout":         {AuthTimeout: settings.Duration(-time.Second)},
		"negative unauthenticated size": {MaxUnauthenticatedMessageSize: -1},
		"negative message timeout":      {MessageTimeout: settings.Duration(-time.Second)},
		"negative auth failures":        {AuthFailures: -1},
		"negative auth failures/minute": {AuthFailuresPerMinute: -1},
	}
	for name, cfg := range tests {
		if _, err := New(context.Background(), cfg, Options{Feeds: newFakeFeeds()}); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "abcd") {
			t.Errorf("%s: error %q shows the key", name, err)
		}
	}
	if _, err := New(context.Background(), Config{}, Options{}); err == nil {
		t.Error("no Feeds accepted")
	}
}

func TestPerUserLimitDefaults(t *testing.T) {
	c := Config{MaxAuctions: 7}.WithDefaults()
	if c.MaxProductsPerUser != 7 || c.MaxSocketsPerUser != DefaultMaxSocketsPerUser {
		t.Errorf("products %d (want max_auctions, 7), sockets %d", c.MaxProductsPerUser, c.MaxSocketsPerUser)
	}
	if c := (Config{}).WithDefaults(); c.MaxProductsPerUser != DefaultMaxAuctions || c.MaxSocketsPerUser != 20 {
		t.Errorf("defaults: products %d, sockets %d", c.MaxProductsPerUser, c.MaxSocketsPerUser)
	}
}
