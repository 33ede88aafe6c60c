package users

import (
	"bytes"
	"testing"
)

func TestCookieSealing(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	sealed, err := SealCookies(key, "alice", "a=b")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenCookies(key, "alice", sealed); err != nil || got != "a=b" {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := OpenCookies(key, "bob", sealed); err == nil {
		t.Error("a record moved to another user decrypts")
	}
	if _, err := OpenCookies(bytes.Repeat([]byte{8}, 32), "alice", sealed); err == nil {
		t.Error("a wrong key decrypts")
	}
}
