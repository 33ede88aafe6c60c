package tokens

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Mint signs an HS256 token for user with cfg's HMAC key, valid from now
// for ttl: sub (or cfg's user claim), iat and exp, and iss and aud when
// cfg checks them, so the token passes cfg's own Verifier. It is what
// `caddy nellis-token` prints, for a team without an auth service.
func Mint(cfg Config, user string, ttl time.Duration, now time.Time) (string, error) {
	cfg = cfg.WithDefaults()
	if cfg.HMACKey == "" {
		return "", errors.New("jwt: no hmac_key configured: tokens for public keys are minted by whoever holds the private key")
	}
	if len(cfg.HMACKey) < MinHMACKeyLength {
		return "", fmt.Errorf("jwt: hmac_key: must be at least %d bytes, got %d", MinHMACKeyLength, len(cfg.HMACKey))
	}
	if err := CheckUser(user); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("jwt: ttl must be positive, got %s", ttl)
	}
	claims := jwt.MapClaims{
		cfg.UserClaim: user,
		"iat":         now.Unix(),
		"exp":         now.Add(ttl).Unix(),
	}
	if cfg.UserClaim != "sub" {
		claims["sub"] = user
	}
	if cfg.Issuer != "" {
		claims["iss"] = cfg.Issuer
	}
	if cfg.Audience != "" {
		claims["aud"] = cfg.Audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(cfg.HMACKey))
}
