package tokens

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testHMACKey = "a-test-hmac-key-of-at-least-32-bytes!"

var testNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// writePEM writes pub as a PKIX PUBLIC KEY file and returns its path.
func writePEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(extra map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func verifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHS256AndES256TokensSignInAsTheirSub(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, Config{HMACKey: testHMACKey, PublicKeys: []string{writePEM(t, &ecKey.PublicKey), writePEM(t, edPub)}})
	for _, tc := range []struct {
		name  string
		token string
		user  string
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, []byte(testHMACKey), claims(nil)), "alice"},
		{"HS512", sign(t, jwt.SigningMethodHS512, []byte(testHMACKey), claims(map[string]any{"sub": "bob@example.com"})), "bob@example.com"},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey, claims(map[string]any{"sub": "carol.b"})), "carol.b"},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, edKey, claims(map[string]any{"sub": "dave_1"})), "dave_1"},
	} {
		user, exp, err := v.Verify(tc.token)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if user != tc.user || !exp.Equal(testNow.Add(time.Hour)) {
			t.Errorf("%s: got user %q expiring %s, want %q at %s", tc.name, user, exp, tc.user, testNow.Add(time.Hour))
		}
	}
}

// TestRotationTriesEveryKeyOfTheType: a token signed with either of two
// configured EC keys verifies.
func TestRotationTriesEveryKeyOfTheType(t *testing.T) {
	old, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cur, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := verifier(t, Config{PublicKeys: []string{writePEM(t, &old.PublicKey), writePEM(t, &cur.PublicKey)}})
	for _, k := range []*ecdsa.PrivateKey{old, cur} {
		if _, _, err := v.Verify(sign(t, jwt.SigningMethodES256, k, claims(nil))); err != nil {
			t.Error(err)
		}
	}
}

func TestBadTokensAreRefusedWithAClearError(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := writePEM(t, &rsaKey.PublicKey)
	rsaPEMBytes, _ := os.ReadFile(rsaPEM)
	ecOnly := Config{PublicKeys: []string{writePEM(t, &ecKey.PublicKey)}}
	hmacAndRSA := Config{HMACKey: testHMACKey, PublicKeys: []string{rsaPEM}}
	hmacOnly := Config{HMACKey: testHMACKey, Issuer: "https://auth.example.com", Audience: "nellis-edge"}
	good := claims(map[string]any{"iss": "https://auth.example.com", "aud": "nellis-edge"})
	withGood := func(extra map[string]any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testHMACKey), c) }
	valid := hs(good)
	tampered := valid[:strings.LastIndex(valid, ".")+1] + flipFirst(valid[strings.LastIndex(valid, ".")+1:])
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good)
	// The classic confusion: an HS256 token whose secret is the server's
	// RSA public key, as PEM, hoping it is taken as the HMAC key.
	confused := sign(t, jwt.SigningMethodHS256, rsaPEMBytes, claims(nil))
	// And the reverse: RS256 claimed, "signed" with the HMAC key's MAC.
	rsClaimed := forgeAlg(t, "RS256", claims(nil))

	for _, tc := range []struct {
		name  string
		cfg   Config
		token string
		want  error
	}{
		{"valid", hmacOnly, valid, nil},
		{"expired", hmacOnly, hs(withGood(map[string]any{"exp": testNow.Add(-time.Minute).Unix()})), ErrExpired},
		{"within leeway", hmacOnly, hs(withGood(map[string]any{"exp": testNow.Add(-10 * time.Second).Unix()})), nil},
		{"no exp", hmacOnly, hs(withGood(map[string]any{"exp": nil})), ErrNoExpiry},
		{"nbf in the future", hmacOnly, hs(withGood(map[string]any{"nbf": testNow.Add(time.Minute).Unix()})), ErrNotYetValid},
		{"wrong issuer", hmacOnly, hs(withGood(map[string]any{"iss": "https://evil.example.com"})), ErrIssuer},
		{"no issuer", hmacOnly, hs(withGood(map[string]any{"iss": nil})), ErrIssuer},
		{"wrong audience", hmacOnly, hs(withGood(map[string]any{"aud": "someone-else"})), ErrAudience},
		{"audience among several", hmacOnly, hs(withGood(map[string]any{"aud": []string{"x", "nellis-edge"}})), nil},
		{"HS256 with only an EC key", ecOnly, hs(claims(nil)), ErrAlgorithm},
		{"HS256 keyed with the RSA public key", Config{PublicKeys: []string{rsaPEM}}, confused, ErrAlgorithm},
		{"HS256 keyed with the RSA public key, HMAC also configured", hmacAndRSA, confused, ErrSignature},
		{"RS256 claimed over an HMAC", hmacAndRSA, rsClaimed, ErrSignature},
		{"RS256 claimed with only an HMAC key", hmacOnly, rsClaimed, ErrAlgorithm},
		{"alg none", hmacOnly, none, ErrAlgorithm},
		{"tampered signature", hmacOnly, tampered, ErrSignature},
		{"tampered payload", hmacOnly, tamperPayload(t, valid), ErrSignature},
		{"not a token", hmacOnly, "not.a.token", ErrMalformed},
		{"two parts", hmacOnly, "abc.def", ErrMalformed},
		{"path in the claim", hmacOnly, hs(withGood(map[string]any{"sub": "../x"})), ErrUserClaim},
		{"leading dot", hmacOnly, hs(withGood(map[string]any{"sub": ".hidden"})), ErrUserClaim},
		{"slash", hmacOnly, hs(withGood(map[string]any{"sub": "a/b"})), ErrUserClaim},
		{"too long", hmacOnly, hs(withGood(map[string]any{"sub": strings.Repeat("a", 65)})), ErrUserClaim},
		{"empty", hmacOnly, hs(withGood(map[string]any{"sub": ""})), ErrUserClaim},
		{"not a string", hmacOnly, hs(withGood(map[string]any{"sub": 42})), ErrUserClaim},
		{"no audience", hmacOnly, hs(withGood(map[string]any{"aud": nil})), ErrAudience},
		{"missing", hmacOnly, hs(withGood(map[string]any{"sub": nil})), ErrUserClaim},
	} {
		_, _, err := verifier(t, tc.cfg).Verify(tc.token)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err != nil && strings.Contains(err.Error(), tc.token) {
			t.Errorf("%s: the error quotes the token: %v", tc.name, err)
		}
	}
}

// flipFirst changes the first character of a base64url string.
func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// tamperPayload makes alice bob in a signed token, keeping the signature.
func tamperPayload(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := jwt.NewParser().DecodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "alice", "bob", 1)))
	return strings.Join(parts, ".")
}

// forgeAlg returns a token whose header claims alg but whose signature is
// the HMAC of the test key.
func forgeAlg(t *testing.T, alg string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["alg"] = alg
	unsigned, err := tok.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jwt.SigningMethodHS256.Sign(unsigned, []byte(testHMACKey))
	if err != nil {
		t.Fatal(err)
	}
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestUserClaimIsConfigurable(t *testing.T) {
	v := verifier(t, Config{HMACKey: testHMACKey, UserClaim: "preferred_username"})
	user, _, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(testHMACKey), claims(map[string]any{"preferred_username": "erin"})))
	if err != nil || user != "erin" {
		t.Fatalf("got %q, %v; want erin", user, err)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("hello"), 0o600)
	private := filepath.Join(dir, "private.pem")
	os.WriteFile(private, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600)
	badDER := filepath.Join(dir, "bad.pem")
	os.WriteFile(badDER, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), 0o600)
	shortKey := "short-secret-key"
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no key"},
		{Config{HMACKey: shortKey}, "hmac_key: must be at least 32 bytes, got 16"},
		{Config{PublicKeys: []string{filepath.Join(dir, "missing.pem")}}, "missing.pem"},
		{Config{PublicKeys: []string{garbage}}, "garbage.pem: no PEM block"},
		{Config{PublicKeys: []string{private}}, `private.pem: a "PRIVATE KEY" PEM block`},
		{Config{PublicKeys: []string{badDER}}, "bad.pem: PUBLIC KEY"},
		{Config{HMACKey: testHMACKey, UserClaim: "a b"}, "user_claim"},
		{Config{HMACKey: testHMACKey, Leeway: -1}, "leeway"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error with %q", tc.cfg, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), shortKey) {
			t.Errorf("the error quotes the HMAC key: %v", err)
		}
	}
	if err := (Config{HMACKey: testHMACKey}).Validate(); err != nil {
		t.Errorf("a good config: %v", err)
	}
}

func TestMintedTokensVerify(t *testing.T) {
	cfg := Config{HMACKey: testHMACKey, Issuer: "https://auth.example.com", Audience: "nellis-edge"}
	token, err := Mint(cfg, "frank", 24*time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	user, exp, err := verifier(t, cfg).Verify(token)
	if err != nil || user != "frank" || !exp.Equal(testNow.Add(24*time.Hour)) {
		t.Fatalf("got %q %s %v", user, exp, err)
	}
	if _, err := Mint(cfg, "../x", time.Hour, testNow); !errors.Is(err, ErrUserClaim) {
		t.Errorf("minting for ../x: %v", err)
	}
	if _, err := Mint(Config{}, "frank", time.Hour, testNow); err == nil {
		t.Error("minted without a key")
	}
}
