package module

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/nellis-edge/gateway/settings"
)

// TestDurationReadsLikeCaddys: the packages' settings.Duration stands in
// for caddy.Duration in the app's JSON, so both must read every input
// alike, and fail alike, and write the same.
func TestDurationReadsLikeCaddys(t *testing.T) {
	for _, raw := range []string{
		`0`, `1500000000`, `-5`, `"1.5s"`, `"250ms"`, `"1d"`, `"1.5d"`, `"1d12h"`, `"2h30m"`,
		`"-1s"`, `"+3s"`, `"0"`, `""`, `"soon"`, `"1x"`, `"d"`, `"1dd"`, `true`, `1.5`, `"1s"x`,
	} {
		var want caddy.Duration
		wantErr := json.Unmarshal([]byte(raw), &want)
		var got settings.Duration
		gotErr := json.Unmarshal([]byte(raw), &got)
		if (gotErr == nil) != (wantErr == nil) || int64(got) != int64(want) {
			t.Errorf("%s: settings.Duration reads %d (%v), caddy.Duration %d (%v)", raw, got, gotErr, want, wantErr)
		}
		if wantErr != nil {
			continue
		}
		wantOut, _ := json.Marshal(want)
		gotOut, _ := json.Marshal(got)
		if string(gotOut) != string(wantOut) {
			t.Errorf("%s: settings.Duration writes %s, caddy.Duration %s", raw, gotOut, wantOut)
		}
	}
}

// TestAppReadsDurationStrings: a JSON config may write any duration
// setting as a string, as it could when the app's fields were
// caddy.Duration.
func TestAppReadsDurationStrings(t *testing.T) {
	var app App
	raw := `{"upstream":{"stall_timeout":"5s","linger":"1d","poll_interval":"1.5s","breaker_cooldown":"2m"},` +
		`"relay":{"write_timeout":"3s","auth_timeout":4000000000},"bidding":{"bid_timeout":"12s"}}`
	if err := caddy.StrictUnmarshalJSON([]byte(raw), &app); err != nil {
		t.Fatal(err)
	}
	u, r, b := app.Upstream, app.Relay, app.Bidding
	for name, got := range map[string]struct{ got, want settings.Duration }{
		"stall_timeout":    {u.StallTimeout, settings.Duration(5 * time.Second)},
		"linger":           {u.Linger, settings.Duration(24 * time.Hour)},
		"poll_interval":    {u.Fallback, settings.Duration(1500 * time.Millisecond)},
		"breaker_cooldown": {u.CoolDown, settings.Duration(2 * time.Minute)},
		"write_timeout":    {r.WriteTimeout, settings.Duration(3 * time.Second)},
		"auth_timeout":     {r.AuthTimeout, settings.Duration(4 * time.Second)},
		"bid_timeout":      {b.BidTimeout, settings.Duration(12 * time.Second)},
	} {
		if got.got != got.want {
			t.Errorf("%s: got %v, want %v", name, got.got, got.want)
		}
	}
}
