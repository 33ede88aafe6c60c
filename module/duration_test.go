package module

import (
	"encoding/json"
	"testing"

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
