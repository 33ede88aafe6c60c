package tokens

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

// Config is the `jwt` block of the `nellis` global option: the keys tokens
// are signed with and the claims checked. At least one key is required.
type Config struct {
	// HMACKey verifies HS256, HS384 and HS512 tokens, and signs the ones
	// `caddy nellis-token` mints. Its bytes are the key, at least 32 of
	// them. A secret: never logged or shown. Default: none.
	HMACKey string `json:"hmac_key,omitempty"`

	// PublicKeys are PEM files, each holding one public key (RSA, ECDSA on
	// P-256, P-384 or P-521, or Ed25519; a PKIX "PUBLIC KEY", an RSA
	// "RSA PUBLIC KEY" or a certificate) that verifies RS*/PS*, ES* or
	// EdDSA tokens. Several keys of a type are each tried (rotation).
	// Default: none.
	PublicKeys []string `json:"public_key,omitempty"`

	// Issuer, when set, must equal the token's iss. Default: not checked.
	Issuer string `json:"issuer,omitempty"`

	// Audience, when set, must be one of the token's aud. Default: not
	// checked.
	Audience string `json:"audience,omitempty"`

	// UserClaim names the claim holding the user's name: 1 to 64 of
	// A-Z, a-z, 0-9, '.', '_', '@' and '-', not starting with a dot and
	// without "..". Default: sub.
	UserClaim string `json:"user_claim,omitempty"`

	// Leeway is the clock skew allowed when checking exp and nbf.
	// Default: 30s.
	Leeway settings.Duration `json:"leeway,omitempty"`
}

// DefaultUserClaim and DefaultLeeway are Config's defaults.
const (
	DefaultUserClaim = "sub"
	DefaultLeeway    = 30 * time.Second
)

// MinHMACKeyLength is the shortest HMAC key accepted, in bytes: as long
// as an HS256 hash, so the key is not the weak point.
const MinHMACKeyLength = 32

// MaxUserLength bounds a user's name taken from a token.
const MaxUserLength = 64

// WithDefaults returns a copy of c with unset fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.UserClaim == "" {
		c.UserClaim = DefaultUserClaim
	}
	if c.Leeway == 0 {
		c.Leeway = settings.Duration(DefaultLeeway)
	}
	return c
}

// Validate reports what is wrong with the settings, reading the public
// key files. Its errors name the setting or the file, never the HMAC key.
func (c Config) Validate() error {
	_, err := c.loadKeys()
	return err
}

// Enabled reports whether any key is configured: a zero Config means
// tokens are not used.
func (c Config) Enabled() bool { return c.HMACKey != "" || len(c.PublicKeys) > 0 }

// keys are a Config's keys, parsed, by type.
type keys struct {
	hmac    []byte
	rsa     []*rsa.PublicKey
	ecdsa   []*ecdsa.PublicKey
	ed25519 []ed25519.PublicKey
}

var claimNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

func (c Config) loadKeys() (*keys, error) {
	var errs []error
	k := new(keys)
	if c.HMACKey != "" {
		if len(c.HMACKey) < MinHMACKeyLength {
			errs = append(errs, fmt.Errorf("jwt: hmac_key: must be at least %d bytes, got %d", MinHMACKeyLength, len(c.HMACKey)))
		} else {
			k.hmac = []byte(c.HMACKey)
		}
	}
	for _, file := range c.PublicKeys {
		pub, err := readPublicKey(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("jwt: public_key %s: %w", file, err))
			continue
		}
		switch pub := pub.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 {
				errs = append(errs, fmt.Errorf("jwt: public_key %s: an RSA key of %d bits; at least 2048", file, pub.N.BitLen()))
				continue
			}
			k.rsa = append(k.rsa, pub)
		case *ecdsa.PublicKey:
			k.ecdsa = append(k.ecdsa, pub)
		case ed25519.PublicKey:
			k.ed25519 = append(k.ed25519, pub)
		default:
			errs = append(errs, fmt.Errorf("jwt: public_key %s: a %T key; want RSA, ECDSA or Ed25519", file, pub))
		}
	}
	if len(errs) == 0 && k.hmac == nil && len(k.rsa)+len(k.ecdsa)+len(k.ed25519) == 0 {
		errs = append(errs, errors.New("jwt: no key: set hmac_key or public_key"))
	}
	if c.UserClaim != "" && !claimNamePattern.MatchString(c.UserClaim) {
		errs = append(errs, fmt.Errorf("jwt: user_claim %q: not a claim name", c.UserClaim))
	}
	if c.Leeway < 0 {
		errs = append(errs, errors.New("jwt: leeway: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, nil
}

// maxKeyFile bounds a PEM file read: a key or certificate is a few KB.
const maxKeyFile = 1 << 20

// readPublicKey reads the first PEM block of file as a public key.
func readPublicKey(file string) (any, error) {
	info, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if info.Size() > maxKeyFile {
		return nil, fmt.Errorf("%d bytes: not a PEM key", info.Size())
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PUBLIC KEY: %w", err)
		}
		return pub, nil
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("RSA PUBLIC KEY: %w", err)
		}
		return pub, nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CERTIFICATE: %w", err)
		}
		return cert.PublicKey, nil
	}
	// A private key here would be a secret in the wrong place: say so
	// without parsing it.
	return nil, fmt.Errorf("a %q PEM block; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
}
