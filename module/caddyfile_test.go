package module

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// adapt runs the Caddyfile adapter as `caddy adapt` does.
func adapt(t *testing.T, src string) (map[string]any, error) {
	t.Helper()
	out, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("adapter produced invalid JSON: %v", err)
	}
	return cfg, nil
}

// adaptErrorAt adapts src, which must fail with want's text at want's
// position ("Caddyfile:<line>: <text>"), and returns the error's message
// for the caller's further checks.
func adaptErrorAt(t *testing.T, src, want string) string {
	t.Helper()
	_, err := adapt(t, src)
	if err == nil {
		t.Fatalf("adapt succeeded, want an error containing %q", want)
	}
	// Caddy words a position as "<message>, at <file>:<line>".
	loc, text, _ := strings.Cut(want, ": ")
	msg := err.Error()
	if !strings.Contains(msg, text) || !strings.Contains(msg, "at "+loc) {
		t.Errorf("error %q\nwant %q at %s", msg, text, loc)
	}
	return msg
}

func nellisJSON(t *testing.T, cfg map[string]any) *App {
	t.Helper()
	apps, _ := cfg["apps"].(map[string]any)
	raw, err := json.Marshal(apps["nellis"])
	if err != nil {
		t.Fatal(err)
	}
	app := new(App)
	if err := json.Unmarshal(raw, app); err != nil {
		t.Fatalf("nellis app JSON: %v", err)
	}
	return app
}

func TestGlobalOptionParses(t *testing.T) {
	cfg, err := adapt(t, `{
	nellis {
		sse_endpoint http://127.0.0.1:9081
		api_endpoint http://127.0.0.1:9081/
		use_sse off
		auth_token tok-a
		user bob tok-b
		cookie_key 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
		stall_timeout 5s
		max_event_size 2MiB
		poll_rate 2.5
		snapshot_format html
		max_auctions 10
		max_products_per_user 12
		max_sockets_per_user 3
		bidding off
		dry_run on
		bids_per_minute 4
		snipe_window 8s
		bid_retention 48h
	}
}
:9080 {
	nellis_ws /ws {
		allowed_origins chrome-extension://abc http://localhost:8080
	}
}
`)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	app := nellisJSON(t, cfg)
	if app.SSEEndpoint != "http://127.0.0.1:9081" || app.APIEndpoint != "http://127.0.0.1:9081/" {
		t.Errorf("endpoints: %q %q", app.SSEEndpoint, app.APIEndpoint)
	}
	if app.useSSE() {
		t.Error("use_sse off was not applied")
	}
	if len(app.Users) != 2 || app.Users[0] != (User{"default", "tok-a"}) || app.Users[1] != (User{"bob", "tok-b"}) {
		t.Errorf("users: %+v", app.Users)
	}
	if time.Duration(app.Upstream.StallTimeout) != 5*time.Second {
		t.Errorf("stall_timeout: %v", app.Upstream.StallTimeout)
	}
	if app.Upstream.MaxEventSize != 2<<20 {
		t.Errorf("max_event_size: %d", app.Upstream.MaxEventSize)
	}
	if app.Upstream.Rate != 2.5 || app.Upstream.Format != "html" || app.Relay.MaxAuctions != 10 {
		t.Errorf("tuning: %+v %+v", app.Upstream, app.Relay)
	}
	if r := app.Relay; r.MaxProductsPerUser != 12 || r.MaxSocketsPerUser != 3 {
		t.Errorf("per-user limits: %+v", r)
	}
	if rc := app.relayConfig(nil); rc.MaxProductsPerUser != 12 || rc.MaxSocketsPerUser != 3 {
		t.Errorf("per-user limits reach the relay as %d products, %d sockets", rc.MaxProductsPerUser, rc.MaxSocketsPerUser)
	}
	if b := app.Bidding; !b.off() || !b.dryRun() || b.BidsPerMinute != 4 || time.Duration(b.SnipeWindow) != 8*time.Second || time.Duration(b.BidRetention) != 48*time.Hour {
		t.Errorf("bidding: %+v", b)
	}
}

func TestUseSSEFromEnvironment(t *testing.T) {
	t.Setenv("NELLIS_TEST_USE_SSE", "off")
	cfg, err := adapt(t, "{\n\tnellis {\n\t\tuse_sse {$NELLIS_TEST_USE_SSE}\n\t\tauth_token x\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if nellisJSON(t, cfg).useSSE() {
		t.Error("use_sse from the environment was not applied")
	}
}

// TestBeforeSignInLimitsParse: the limits on sockets that have not signed
// in reach the relay's config.
func TestBeforeSignInLimitsParse(t *testing.T) {
	cfg, err := adapt(t, `{
	nellis {
		auth_token a-long-enough-token-1
		max_unauthenticated_per_address 4
		auth_timeout 5s
		max_unauthenticated_message_size 2KiB
		message_timeout 7s
		auth_failures 2
		auth_failures_per_minute 6
	}
}
`)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	app := nellisJSON(t, cfg)
	got := app.relayConfig(nil)
	if got.MaxUnauthenticatedPerAddress != 4 || time.Duration(got.AuthTimeout) != 5*time.Second ||
		got.MaxUnauthenticatedMessageSize != 2<<10 || time.Duration(got.MessageTimeout) != 7*time.Second ||
		got.AuthFailures != 2 || got.AuthFailuresPerMinute != 6 {
		t.Errorf("relay config: %+v", got)
	}
	// Unset, each has its protective default.
	cfg, err = adapt(t, "{\n\tnellis {\n\t\tauth_token a-long-enough-token-1\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	def := nellisJSON(t, cfg).relayConfig(nil)
	if def.MaxUnauthenticatedPerAddress != 8 || time.Duration(def.AuthTimeout) != 10*time.Second ||
		def.MaxUnauthenticatedMessageSize != 4<<10 || time.Duration(def.MessageTimeout) != 10*time.Second ||
		def.AuthFailures != 3 || def.AuthFailuresPerMinute != 10 {
		t.Errorf("defaults: %+v", def)
	}
}

// TestConfigErrors checks that each mistake fails adaptation with one line
// naming the file and the line of the mistake.
func TestConfigErrors(t *testing.T) {
	const head = "{\n\tnellis {\n\t\tauth_token t\n" // the mistake goes on line 4
	const tail = "\t}\n}\n"
	cases := map[string]struct {
		src  string
		want string
	}{
		"unknown subdirective":    {head + "\t\tstal_timeout 3s\n" + tail, `Caddyfile:4: unrecognized subdirective "stal_timeout"`},
		"bad url":                 {head + "\t\tsse_endpoint ftp://x\n" + tail, "Caddyfile:4: sse_endpoint: invalid URL \"ftp://x\": scheme must be http or https"},
		"url without host":        {head + "\t\tapi_endpoint https://\n" + tail, "Caddyfile:4: api_endpoint: invalid URL"},
		"bad duration":            {head + "\t\tstall_timeout soon\n" + tail, `Caddyfile:4: stall_timeout: invalid duration "soon"`},
		"zero duration":           {head + "\t\tlinger 0s\n" + tail, `Caddyfile:4: linger: must be positive`},
		"bid retention too short": {head + "\t\tbid_retention 30m\n" + tail, `Caddyfile:4: bid_retention: must be at least 1h0m0s, got 30m0s`},
		"use_sse maybe":           {head + "\t\tuse_sse maybe\n" + tail, `Caddyfile:4: use_sse: want on, off or a percent of lots such as 5%, got "maybe"`},
		"use_sse bare number":     {head + "\t\tuse_sse 5\n" + tail, `Caddyfile:4: use_sse: want on, off or a percent of lots such as 5%, got "5"`},
		"use_sse over 100%":       {head + "\t\tuse_sse 150%\n" + tail, `Caddyfile:4: use_sse: want a percent from 0% to 100%, got "150%"`},
		"missing argument":        {head + "\t\tuse_sse\n" + tail, "Caddyfile:4: use_sse: want exactly one argument, got 0"},
		"bad count":               {head + "\t\tmax_streams many\n" + tail, `Caddyfile:4: max_streams: want a positive whole number, got "many"`},
		"zero sockets per user":   {head + "\t\tmax_sockets_per_user 0\n" + tail, `Caddyfile:4: max_sockets_per_user: want a positive whole number, got "0"`},
		"products per user twice": {head + "\t\tmax_products_per_user 5 6\n" + tail, "Caddyfile:4: max_products_per_user: want exactly one argument, got 2"},
		"bad size":                {head + "\t\tmax_event_size huge\n" + tail, `Caddyfile:4: max_event_size: want a size`},
		"upstream_ca missing":     {head + "\t\tupstream_ca testdata/no-such-ca.pem\n" + tail, "Caddyfile:4: upstream_ca: open testdata/no-such-ca.pem: no such file or directory"},
		"upstream_ca not PEM":     {head + "\t\tupstream_ca ../go.mod\n" + tail, "Caddyfile:4: upstream_ca: no PEM certificate in ../go.mod"},
		"bad format":              {head + "\t\tsnapshot_format xml\n" + tail, `Caddyfile:4: snapshot_format: want auto, json, data or html, got "xml"`},
		"bidding maybe":           {head + "\t\tbidding maybe\n" + tail, `Caddyfile:4: bidding: want on or off, got "maybe"`},
		"bad cookie key":          {head + "\t\tcookie_key short\n" + tail, "Caddyfile:4: cookie_key: must be 32 bytes"},
		"user without token":      {head + "\t\tuser bob\n" + tail, "Caddyfile:4: user: want <name> <token>, got 1 arguments"},
		"cookie key from an unset variable": {head + "\t\tcookie_key {$NELLIS_TEST_UNSET_KEY}\n" + tail,
			"Caddyfile:4: cookie_key: empty (is its environment variable set?)"},
		"quoted cookie key from an unset variable": {head + "\t\tcookie_key \"{$NELLIS_TEST_UNSET_KEY}\"\n" + tail,
			"Caddyfile:4: cookie_key: empty (is its environment variable set?)"},
		"zero auth timeout":    {head + "\t\tauth_timeout 0s\n" + tail, `Caddyfile:4: auth_timeout: must be positive`},
		"bad message timeout":  {head + "\t\tmessage_timeout later\n" + tail, `Caddyfile:4: message_timeout: invalid duration "later"`},
		"bad per-address cap":  {head + "\t\tmax_unauthenticated_per_address -1\n" + tail, `Caddyfile:4: max_unauthenticated_per_address: want a positive whole number, got "-1"`},
		"bad unauth size":      {head + "\t\tmax_unauthenticated_message_size lots\n" + tail, `Caddyfile:4: max_unauthenticated_message_size: want a size`},
		"bad auth failures":    {head + "\t\tauth_failures 0\n" + tail, `Caddyfile:4: auth_failures: want a positive whole number, got "0"`},
		"two auth budgets":     {head + "\t\tauth_failures_per_minute 5 6\n" + tail, `Caddyfile:4: auth_failures_per_minute: want exactly one argument, got 2`},
		"missing token":        {"{\n\tnellis {\n\t\tuse_sse on\n\t}\n}\n", "Caddyfile:4: nellis: no users"},
		"empty token from env": {"{\n\tnellis {\n\t\tauth_token {$NELLIS_TEST_UNSET_TOKEN}\n\t}\n}\n", "Caddyfile:3: auth_token: want exactly one argument, got 0"},
		"shared token":         {head + "\t\tuser bob t\n" + tail, `Caddyfile:4: user: user "bob" shares a token with another user`},
		"conflicting blocks": {
			"{\n\tnellis {\n\t\tauth_token t\n\t\tuse_sse on\n\t}\n\tnellis {\n\t\tuse_sse off\n\t}\n}\n",
			"Caddyfile:7: use_sse: given twice with different values",
		},
		"conflicting bidding switches": {
			"{\n\tnellis {\n\t\tauth_token t\n\t\tbidding off\n\t}\n\tnellis {\n\t\tbidding on\n\t}\n}\n",
			"Caddyfile:7: bidding: given twice with different values",
		},
		"conflicting dry_run switches": {
			"{\n\tnellis {\n\t\tauth_token t\n\t\tdry_run off\n\t}\n\tnellis {\n\t\tdry_run on\n\t}\n}\n",
			"Caddyfile:7: dry_run: given twice with different values",
		},
		"bidding on, then off in the same block": {
			head + "\t\tbidding on\n\t\tbidding off\n" + tail,
			"Caddyfile:5: bidding: given twice with different values",
		},
		"conflicting users": {
			"{\n\tnellis {\n\t\tuser bob a\n\t}\n\tnellis {\n\t\tuser bob b\n\t}\n}\n",
			`Caddyfile:6: user: user "bob" given twice with different tokens`,
		},
		"ws unknown subdirective": {
			"{\n\tnellis {\n\t\tauth_token t\n\t}\n}\n:9080 {\n\tnellis_ws {\n\t\torigins x\n\t}\n}\n",
			`Caddyfile:8: unrecognized subdirective "origins"`,
		},
		"ws bad origin": {
			"{\n\tnellis {\n\t\tauth_token t\n\t}\n}\n:9080 {\n\tnellis_ws {\n\t\tallowed_origins chrome-extension://abc/path\n\t}\n}\n",
			`Caddyfile:8: allowed_origins: "chrome-extension://abc/path" is not an origin`,
		},
		"endpoint without the app": {
			":9080 {\n\tnellis_api /api/*\n}\n",
			"Caddyfile:2: nellis_api needs the global nellis option",
		},
		"sim bad format": {
			":9080 {\n\tnellis_sim {\n\t\tsnapshot_format xml\n\t}\n}\n",
			`Caddyfile:3: snapshot_format: want json, data or html, got "xml"`,
		},
		"sim unknown subdirective": {
			":9080 {\n\tnellis_sim {\n\t\tspeed 3\n\t}\n}\n",
			`Caddyfile:3: unrecognized subdirective "speed"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			msg := adaptErrorAt(t, tc.src, tc.want)
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
		})
	}
}

// TestErrorsNeverShowSecrets: a conflict or a bad value names the setting,
// never the token or key behind it.
func TestErrorsNeverShowSecrets(t *testing.T) {
	for _, src := range []string{
		"{\n\tnellis {\n\t\tuser bob s3cret-one\n\t}\n\tnellis {\n\t\tuser bob s3cret-two\n\t}\n}\n",
		"{\n\tnellis {\n\t\tauth_token s3cret-one\n\t\tcookie_key s3cret-two\n\t}\n}\n",
		"{\n\tnellis {\n\t\tuser a s3cret-one\n\t\tuser b s3cret-one\n\t}\n}\n",
	} {
		_, err := adapt(t, src)
		if err == nil {
			t.Fatalf("adapt succeeded for %q", src)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestRepeatedBlockWithSameValues(t *testing.T) {
	cfg, err := adapt(t, "{\n\tnellis {\n\t\tauth_token t\n\t\tuse_sse off\n\t\tbidding on\n\t}\n\tnellis {\n\t\tuse_sse off\n\t\tbidding on\n\t\tuser bob b\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	app := nellisJSON(t, cfg)
	if app.useSSE() || len(app.Users) != 2 || app.Bidding.off() {
		t.Errorf("merged app: use_sse=%v users=%d bidding off=%v", app.useSSE(), len(app.Users), app.Bidding.off())
	}
}
