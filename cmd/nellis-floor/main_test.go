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
