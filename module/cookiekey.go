package module

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// parseCookieKey reads the 32-byte AES-256 key that encrypts cookies at
// rest, given as 64 hex digits or standard base64. Errors never echo the
// key: it is a secret.
func parseCookieKey(raw string) ([]byte, error) {
	if len(raw) == 64 {
		if key, err := hex.DecodeString(raw); err == nil {
			return key, nil
		}
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, errors.New("want 32 bytes as 64 hex digits or standard base64")
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("want 32 bytes, got %d", len(key))
	}
	return key, nil
}
