package nellis

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	const cookies = "cf=1; __session=abcdef0123456789; theme=dark"
	err := fmt.Errorf("decoding %q: %w", "__session=abcdef0123456789 and abcdef0123456789", ErrMalformed)
	got := redact(err, cookies)
	if strings.Contains(got.Error(), "abcdef0123456789") {
		t.Errorf("redact left the secret in %q", got)
	}
	if !errors.Is(got, ErrMalformed) {
		t.Error("redaction lost the error kind")
	}
	// Short values ("1", "dark") are words, not secrets: left alone.
	plain := errors.New("status 1, theme dark")
	if redact(plain, cookies) != plain {
		t.Errorf("redact changed an error without secrets: %q", redact(plain, cookies))
	}
	if redact(nil, cookies) != nil || redact(plain, "") != plain {
		t.Error("redact of nothing changed something")
	}
}
