package module

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/wsrelay"
)

// validate runs what `caddy validate` runs: provision and validate, no
// start, then cleanup.
func validate(t *testing.T, app map[string]any) error {
	t.Helper()
	raw, err := json.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&caddy.Config{
		Admin:   &caddy.AdminConfig{Disabled: true},
		AppsRaw: caddy.ModuleMap{"nellis": raw},
	})
}

// TestValidateNeverDialsNellis: provisioning does no network I/O, so
// `caddy validate` works offline and never touches Nellis.
func TestValidateNeverDialsNellis(t *testing.T) {
	addr, dials := dialCounter(t)
	url := "http://" + addr
	err := validate(t, map[string]any{
		"sse_endpoint": url, "api_endpoint": url,
		"users": []map[string]string{{"name": "default", "token": "t"}},
	})
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("validate dialled the upstream %d times", n)
	}
}

// TestSecretsFromEnvironment: {env.*} placeholders in tokens and the
// cookie key are read at load time, and an unset one is a clear error
// that names the user, not a secret.
func TestSecretsFromEnvironment(t *testing.T) {
	app := map[string]any{
		"users":      []map[string]string{{"name": "alice", "token": "{env.NELLIS_TEST_TOKEN}"}},
		"cookie_key": "{env.NELLIS_TEST_KEY}",
	}
	t.Setenv("NELLIS_TEST_TOKEN", "s3cret-token")
	t.Setenv("NELLIS_TEST_KEY", strings.Repeat("ab", 32))
	if err := validate(t, app); err != nil {
		t.Fatalf("with the environment set: %v", err)
	}

	t.Setenv("NELLIS_TEST_KEY", "not-a-key")
	err := validate(t, app)
	if err == nil || !strings.Contains(err.Error(), "cookie_key") || strings.Contains(err.Error(), "not-a-key") {
		t.Errorf("bad key from the environment: %v", err)
	}

	t.Setenv("NELLIS_TEST_KEY", strings.Repeat("ab", 32))
	t.Setenv("NELLIS_TEST_TOKEN", "")
	err = validate(t, app)
	if err == nil || !strings.Contains(err.Error(), `user "alice": token is empty`) {
		t.Errorf("unset token: %v", err)
	}

	// An unset key is not "no key": it would run with cookies in memory
	// only, and every save would drop the sealed ones.
	t.Setenv("NELLIS_TEST_TOKEN", "s3cret-token")
	t.Setenv("NELLIS_TEST_KEY", "")
	err = validate(t, app)
	if err == nil || !strings.Contains(err.Error(), "cookie_key: {env.NELLIS_TEST_KEY} is empty") {
		t.Errorf("unset cookie key: %v", err)
	}
}

// TestValidateUsers: JSON configs get the same user checks as Caddyfiles,
// and the errors name users, never tokens.
func TestValidateUsers(t *testing.T) {
	for name, tc := range map[string]struct {
		users []map[string]string
		want  string
	}{
		"name twice":   {[]map[string]string{{"name": "bob", "token": "s3cret-a"}, {"name": "bob", "token": "s3cret-b"}}, `user "bob" given twice`},
		"shared token": {[]map[string]string{{"name": "amy", "token": "s3cret-a"}, {"name": "bob", "token": "s3cret-a"}}, `users "amy" and "bob" share a token`},
		"bad name":     {[]map[string]string{{"name": "a b", "token": "s3cret-a"}}, `user name "a b"`},
	} {
		t.Run(name, func(t *testing.T) {
			err := validate(t, map[string]any{"users": tc.users})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("got %v, want an error containing %q and no token", err, tc.want)
			}
		})
	}
}

// In cluster mode the relay saves a user's change within
// wsrelay.ClusterSaveDelay, not after a single node's 250 ms: the other
// nodes see a change only once it is saved, and issue 15 wants it on
// every node within 250 ms (e2e TestClusterUserStateConverges measured
// about 260 ms with the single node's delay).
func TestClusterModeSavesUsersAtOnce(t *testing.T) {
	var a App
	if d := a.relayConfig(nil).SaveDelay; d != wsrelay.DefaultSaveDelay {
		t.Errorf("single node: save delay %v, want %v", d, wsrelay.DefaultSaveDelay)
	}
	a.Cluster = &cluster.Config{}
	if d := a.relayConfig(nil).SaveDelay; d != wsrelay.ClusterSaveDelay {
		t.Errorf("cluster mode: save delay %v, want %v", d, wsrelay.ClusterSaveDelay)
	}
}
