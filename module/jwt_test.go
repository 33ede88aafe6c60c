package module

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/nellis-edge/gateway/tokens"
)

const testJWTKey = "a-module-test-hmac-key-of-32-bytes-or-more"

// writeECKey writes a P-256 public key as PEM and returns its path.
func writeECKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	file := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestJWTBlockParses(t *testing.T) {
	pemFile := writeECKey(t)
	cfg, err := adapt(t, "{\n\tnellis {\n\t\tjwt {\n\t\t\thmac_key "+testJWTKey+"\n\t\t\tpublic_key "+pemFile+
		"\n\t\t\tpublic_key "+pemFile+"\n\t\t\tissuer https://auth.example.com\n\t\t\taudience nellis-edge\n\t\t\tuser_claim email\n\t\t\tleeway 5s\n\t\t}\n\t\tuser_retention 720h\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	app := nellisJSON(t, cfg)
	want := tokens.Config{HMACKey: testJWTKey, PublicKeys: []string{pemFile, pemFile}, Issuer: "https://auth.example.com",
		Audience: "nellis-edge", UserClaim: "email", Leeway: 5e9}
	if app.JWT == nil || app.JWT.HMACKey != want.HMACKey || len(app.JWT.PublicKeys) != 2 || app.JWT.Issuer != want.Issuer ||
		app.JWT.Audience != want.Audience || app.JWT.UserClaim != want.UserClaim || app.JWT.Leeway != want.Leeway {
		t.Fatalf("jwt %+v, want %+v", app.JWT, want)
	}
	if len(app.Users) != 0 || time.Duration(app.Relay.UserRetention) != 720*time.Hour {
		t.Fatalf("users %v, retention %s", app.Users, app.Relay.UserRetention)
	}
	if err := app.Validate(); err != nil {
		t.Fatalf("a jwt block alone is a valid config: %v", err)
	}
	// A JSON config's jwt object without a key is no way to sign in.
	if err := (&App{JWT: &tokens.Config{Issuer: "x"}}).Validate(); err == nil || !strings.Contains(err.Error(), "jwt: no key") {
		t.Fatalf("a jwt object without a key: %v", err)
	}
	// A key from the environment stays a placeholder in the JSON.
	cfg, err = adapt(t, "{\n\tnellis {\n\t\tjwt {\n\t\t\thmac_key {env.NELLIS_JWT_KEY}\n\t\t}\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if app := nellisJSON(t, cfg); app.JWT.HMACKey != "{env.NELLIS_JWT_KEY}" {
		t.Fatalf("hmac_key in the JSON: %q", app.JWT.HMACKey)
	}
}

func TestJWTBlockErrors(t *testing.T) {
	const head = "{\n\tnellis {\n\t\tjwt {\n" // the mistake goes on line 4
	const tail = "\t\t}\n\t}\n}\n"
	missing := filepath.Join(t.TempDir(), "missing.pem")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ src, want string }{
		"short key":      {head + "\t\t\thmac_key short-s3cret\n" + tail, "Caddyfile:4: jwt: hmac_key: must be at least 32 bytes, got 12"},
		"key from unset": {head + "\t\t\thmac_key {$NELLIS_TEST_UNSET_KEY}\n" + tail, "Caddyfile:4: jwt: hmac_key: want one non-empty key"},
		"missing file":   {head + "\t\t\tpublic_key " + missing + "\n" + tail, "Caddyfile:5: jwt: public_key " + missing},
		"not PEM":        {head + "\t\t\tpublic_key " + garbage + "\n" + tail, "Caddyfile:5: jwt: public_key " + garbage + ": no PEM block"},
		"unknown":        {head + "\t\t\thmac_kye " + testJWTKey + "\n" + tail, `Caddyfile:4: jwt: unrecognized subdirective "hmac_kye"`},
		"no key":         {head + "\t\t\tissuer x\n" + tail, "Caddyfile:5: jwt: no key"},
		"issuer twice":   {head + "\t\t\thmac_key " + testJWTKey + "\n\t\t\tissuer a\n\t\t\tissuer b\n" + tail, "Caddyfile:6: jwt: issuer given twice"},
		"bad leeway":     {head + "\t\t\thmac_key " + testJWTKey + "\n\t\t\tleeway soon\n" + tail, `Caddyfile:5: jwt: leeway: invalid duration "soon"`},
		"arguments":      {"{\n\tnellis {\n\t\tjwt on\n\t}\n}\n", "Caddyfile:3: jwt: takes a block"},
		"bad retention":  {"{\n\tnellis {\n\t\tauth_token t\n\t\tuser_retention never\n\t}\n}\n", `Caddyfile:4: user_retention: invalid duration "never"`},
		"two blocks differ": {"{\n\tnellis {\n\t\tjwt {\n\t\t\thmac_key " + testJWTKey + "\n\t\t}\n\t}\n\tnellis {\n\t\tjwt {\n\t\t\thmac_key " + testJWTKey + "-2\n\t\t}\n\t}\n}\n",
			"Caddyfile:10: jwt: given twice with different values"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			msg := adaptErrorAt(t, tc.src, tc.want)
			if strings.Contains(msg, "s3cret") || strings.Contains(msg, testJWTKey) {
				t.Errorf("error shows the key: %q", msg)
			}
		})
	}
}

// TestJWTKeyFromTheEnvironment: {env.VAR} is read at provisioning; unset
// or too short, the error names the variable or the length, never a key.
func TestJWTKeyFromTheEnvironment(t *testing.T) {
	t.Setenv("NELLIS_TEST_JWT_KEY", testJWTKey)
	app := &App{JWT: &tokens.Config{HMACKey: "{env.NELLIS_TEST_JWT_KEY}"}}
	if err := app.resolveSecrets(); err != nil || app.JWT.HMACKey != testJWTKey {
		t.Fatalf("resolved %q, %v", app.JWT.HMACKey, err)
	}
	if err := app.relayConfig(nil).Validate(); err != nil {
		t.Fatalf("a good key: %v", err)
	}
	unset := &App{JWT: &tokens.Config{HMACKey: "{env.NELLIS_TEST_UNSET_JWT_KEY}"}}
	if err := unset.resolveSecrets(); err == nil || !strings.Contains(err.Error(), "{env.NELLIS_TEST_UNSET_JWT_KEY} is empty") {
		t.Fatalf("unset variable: %v", err)
	}
	t.Setenv("NELLIS_TEST_JWT_KEY", "short-s3cret")
	short := &App{JWT: &tokens.Config{HMACKey: "{env.NELLIS_TEST_JWT_KEY}"}}
	if err := short.resolveSecrets(); err != nil {
		t.Fatal(err)
	}
	err := short.relayConfig(nil).Validate()
	if err == nil || !strings.Contains(err.Error(), "at least 32 bytes") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("a short key: %v", err)
	}
}

// runTokenCommand runs `caddy nellis-token` as Caddy registered it.
func runTokenCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	registered, ok := caddycmd.Commands()["nellis-token"]
	if !ok {
		t.Fatal("nellis-token is not registered")
	}
	cmd := &cobra.Command{Use: "nellis-token"}
	registered.CobraFunc(cmd)
	cmd.SetArgs(args)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	return strings.TrimSpace(out.String()), err
}

func TestNellisTokenMintsWhatTheConfigAccepts(t *testing.T) {
	t.Setenv("NELLIS_TEST_JWT_KEY", testJWTKey)
	file := filepath.Join(t.TempDir(), "Caddyfile")
	src := "{\n\tnellis {\n\t\tjwt {\n\t\t\thmac_key {env.NELLIS_TEST_JWT_KEY}\n\t\t\tissuer https://auth.example.com\n\t\t\taudience nellis-edge\n\t\t}\n\t}\n}\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	token, err := runTokenCommand(t, "--config", file, "--adapter", "caddyfile", "--user", "alice", "--ttl", "2h")
	if err != nil {
		t.Fatal(err)
	}
	v, err := tokens.NewVerifier(tokens.Config{HMACKey: testJWTKey, Issuer: "https://auth.example.com", Audience: "nellis-edge"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	user, exp, err := v.Verify(token)
	if err != nil || user != "alice" || time.Until(exp) < 119*time.Minute || time.Until(exp) > 2*time.Hour {
		t.Fatalf("minted token: user %q, exp in %s, %v", user, time.Until(exp), err)
	}
	// --key-env takes the key from another variable.
	t.Setenv("NELLIS_OTHER_KEY", testJWTKey+"-other")
	other, err := runTokenCommand(t, "--config", file, "--adapter", "caddyfile", "--key-env", "NELLIS_OTHER_KEY", "--user", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify(other); !errors.Is(err, tokens.ErrSignature) {
		t.Fatalf("a token from another key: %v", err)
	}

	noJWT := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(noJWT, []byte("{\n\tnellis {\n\t\tauth_token t\n\t}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", file, "--adapter", "caddyfile"}, "--user is required"},
		{[]string{"--config", file, "--adapter", "caddyfile", "--user", "../x"}, "not a safe user name"},
		{[]string{"--config", file, "--adapter", "caddyfile", "--user", "a", "--ttl", "0s"}, "--ttl must be positive"},
		{[]string{"--config", noJWT, "--adapter", "caddyfile", "--user", "a"}, "no jwt block with an hmac_key"},
		{[]string{"--config", file, "--adapter", "caddyfile", "--user", "a", "--key-env", "NELLIS_TEST_UNSET_VAR"}, "NELLIS_TEST_UNSET_VAR is empty or not set"},
	} {
		_, err := runTokenCommand(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), testJWTKey) {
			t.Errorf("the error shows the key: %v", err)
		}
	}
	os.Unsetenv("NELLIS_TEST_JWT_KEY")
	if _, err := runTokenCommand(t, "--config", file, "--adapter", "caddyfile", "--user", "a"); err == nil ||
		!strings.Contains(err.Error(), "{env.NELLIS_TEST_JWT_KEY} is empty") {
		t.Errorf("unset key variable: %v", err)
	}
}
