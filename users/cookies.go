package users

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
)

// SealCookies encrypts a user's cookies with AES-256-GCM under key (32
// bytes): a random nonce, prepended, then base64. The user's record key is
// the additional data, so cookies copied into another user's record do
// not open.
func SealCookies(key []byte, user, cookies string) (string, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(cookies)+gcm.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := gcm.Seal(nonce, nonce, []byte(cookies), []byte(RecordKey(user)))
	return base64.StdEncoding.EncodeToString(sealed), nil
}

// OpenCookies decrypts what SealCookies sealed for the same user and key.
// Its errors never quote the cookies.
func OpenCookies(key []byte, user, sealed string) (string, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < gcm.NonceSize() {
		return "", errors.New("malformed sealed cookies")
	}
	plain, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], []byte(RecordKey(user)))
	if err != nil {
		return "", errors.New("sealed cookies do not authenticate")
	}
	return string(plain), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
