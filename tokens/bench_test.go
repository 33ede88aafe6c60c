package tokens

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify is the cost of one sign-in with a signed token.
func BenchmarkVerify(b *testing.B) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(Config{HMACKey: testHMACKey, PublicKeys: []string{writePEM(b, &ecKey.PublicKey)}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	c := jwt.MapClaims{"sub": "alice", "exp": 1 << 40}
	for _, tc := range []struct {
		name string
		m    jwt.SigningMethod
		key  any
	}{{"HS256", jwt.SigningMethodHS256, []byte(testHMACKey)}, {"ES256", jwt.SigningMethodES256, ecKey}} {
		token, err := jwt.NewWithClaims(tc.m, c).SignedString(tc.key)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := v.Verify(token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
