package tokens

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The reasons a token is refused; Verify's errors match one of them
// (errors.Is) and never include the token.
var (
	ErrMalformed    = errors.New("token malformed")
	ErrAlgorithm    = errors.New("token algorithm not allowed")
	ErrSignature    = errors.New("token signature invalid")
	ErrExpired      = errors.New("token expired")
	ErrNoExpiry     = errors.New("token has no exp")
	ErrNotYetValid  = errors.New("token not valid yet")
	ErrIssuer       = errors.New("token issuer not accepted")
	ErrAudience     = errors.New("token audience not accepted")
	ErrUserClaim    = errors.New("token user claim missing or not a safe user name")
	ErrInvalidClaim = errors.New("token claims invalid")
)

// Verifier checks tokens against one Config. Safe for concurrent use.
type Verifier struct {
	cfg     Config
	keys    *keys
	methods []string // the algorithms the keys verify
	parser  *jwt.Parser
}

// NewVerifier checks cfg (as Validate) and returns its Verifier. now is
// the clock exp and nbf are checked against; nil is time.Now.
func NewVerifier(cfg Config, now func() time.Time) (*Verifier, error) {
	cfg = cfg.WithDefaults()
	k, err := cfg.loadKeys()
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	v := &Verifier{cfg: cfg, keys: k, methods: k.methods()}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithLeeway(time.Duration(cfg.Leeway)),
		jwt.WithTimeFunc(now),
		// A token that never expires could never be taken back.
		jwt.WithExpirationRequired(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// methods lists the algorithms k's keys verify.
func (k *keys) methods() []string {
	var m []string
	if k.hmac != nil {
		m = append(m, "HS256", "HS384", "HS512")
	}
	if len(k.rsa) > 0 {
		m = append(m, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
	}
	for _, pub := range k.ecdsa {
		switch pub.Curve.Params().BitSize {
		case 256:
			m = append(m, "ES256")
		case 384:
			m = append(m, "ES384")
		case 521:
			m = append(m, "ES512")
		}
	}
	if len(k.ed25519) > 0 {
		m = append(m, "EdDSA")
	}
	slices.Sort(m)
	return slices.Compact(m)
}

// Methods lists the algorithms accepted, sorted.
func (v *Verifier) Methods() []string { return slices.Clone(v.methods) }

// LooksLikeToken reports whether s has a JWT's shape (three parts
// separated by dots), so that a caller tries it as one only then.
func LooksLikeToken(s string) bool { return strings.Count(s, ".") == 2 }

// Verify checks raw's signature and claims and returns the user it names
// and when it expires.
func (v *Verifier) Verify(raw string) (user string, expires time.Time, err error) {
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(raw, claims, v.keyFor)
	if err != nil {
		return "", time.Time{}, v.reason(tok, claims, err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return "", time.Time{}, ErrNoExpiry
	}
	name, ok := claims[v.cfg.UserClaim].(string)
	if !ok {
		return "", time.Time{}, fmt.Errorf("%w: no string claim %q", ErrUserClaim, v.cfg.UserClaim)
	}
	if err := CheckUser(name); err != nil {
		return "", time.Time{}, err
	}
	return name, exp.Time, nil
}

// reason maps the library's error to the package's, without the token.
func (v *Verifier) reason(tok *jwt.Token, claims jwt.MapClaims, err error) error {
	if tok != nil && tok.Method != nil && !slices.Contains(v.methods, tok.Method.Alg()) {
		return fmt.Errorf("%w: %q (accepted: %s)", ErrAlgorithm, tok.Method.Alg(), strings.Join(v.methods, ", "))
	}
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		// Which one the library does not say but in words.
		switch {
		case claims["exp"] == nil:
			return ErrNoExpiry
		case claims["iss"] == nil && v.cfg.Issuer != "":
			return ErrIssuer
		case claims["aud"] == nil && v.cfg.Audience != "":
			return ErrAudience
		}
	}
	for _, m := range []struct{ lib, ours error }{
		{jwt.ErrTokenMalformed, ErrMalformed},
		{jwt.ErrTokenUnverifiable, ErrAlgorithm}, // an algorithm not known at all
		{jwt.ErrTokenSignatureInvalid, ErrSignature},
		{jwt.ErrTokenExpired, ErrExpired},
		{jwt.ErrTokenNotValidYet, ErrNotYetValid},
		{jwt.ErrTokenUsedBeforeIssued, ErrNotYetValid},
		{jwt.ErrTokenInvalidIssuer, ErrIssuer},
		{jwt.ErrTokenInvalidAudience, ErrAudience},
	} {
		if errors.Is(err, m.lib) {
			return m.ours
		}
	}
	return ErrInvalidClaim
}

// keyFor returns the keys that may have signed tok: those of the type its
// algorithm needs (the parser has already refused an algorithm no key
// verifies), every one of them, so that rotated keys all work.
func (v *Verifier) keyFor(tok *jwt.Token) (any, error) {
	var set []jwt.VerificationKey
	switch m := tok.Method.(type) {
	case *jwt.SigningMethodHMAC:
		return v.keys.hmac, nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		for _, k := range v.keys.rsa {
			set = append(set, k)
		}
	case *jwt.SigningMethodECDSA:
		for _, k := range v.keys.ecdsa {
			if k.Curve.Params().BitSize == m.CurveBits {
				set = append(set, k)
			}
		}
	case *jwt.SigningMethodEd25519:
		for _, k := range v.keys.ed25519 {
			set = append(set, k)
		}
	}
	if len(set) == 0 {
		return nil, ErrAlgorithm
	}
	return jwt.VerificationKeySet{Keys: set}, nil
}

// CheckUser accepts a user name taken from a token only if it is safe as a
// storage key as it is: 1 to MaxUserLength of A-Z, a-z, 0-9, '.', '_', '@'
// and '-', not starting with a dot, without "..". Anything else is
// refused rather than rewritten, since a rewritten name could collide
// with another user's.
func CheckUser(name string) error {
	if name == "" || len(name) > MaxUserLength {
		return fmt.Errorf("%w: must be 1 to %d characters", ErrUserClaim, MaxUserLength)
	}
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_', r == '@', r == '-':
		default:
			return fmt.Errorf("%w: only A-Z, a-z, 0-9, '.', '_', '@' and '-' are allowed", ErrUserClaim)
		}
	}
	if name[0] == '.' || strings.Contains(name, "..") {
		return fmt.Errorf("%w: must not start with a dot or hold \"..\"", ErrUserClaim)
	}
	return nil
}
