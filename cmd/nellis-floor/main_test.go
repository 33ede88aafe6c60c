package main

import (
	"strings"
	"testing"
)

func TestRunRejectsArguments(t *testing.T) {
	if err := run([]string{"extra"}); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Fatalf("run with an argument: %v", err)
	}
	if err := run([]string{"-listen", "127.0.0.1:notaport"}); err == nil {
		t.Fatal("run with a bad address succeeded")
	}
}

// -cert and -key go together and must load, or the floor does not start.
func TestRunRejectsBadCertificateFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-cert", "cert.pem"}, "-cert and -key go together"},
		{[]string{"-key", "key.pem"}, "-cert and -key go together"},
		{[]string{"-cert", "/nonexistent/cert.pem", "-key", "/nonexistent/key.pem"}, "no such file"},
	} {
		if err := run(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
