package module

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
			_, err := adapt(t, tc.src)
			if err == nil {
				t.Fatalf("adapt succeeded, want an error containing %q", tc.want)
			}
			loc, text, _ := strings.Cut(tc.want, ": ")
			msg := err.Error()
			if !strings.Contains(msg, text) || !strings.Contains(msg, "at "+loc) {
				t.Errorf("error %q\nwant %q at %s", msg, text, loc)
			}
			if strings.Contains(msg, "s3cret") || strings.Contains(msg, testJWTKey) {
				t.Errorf("error shows the key: %q", msg)
			}
		})
	}
}
