package main

import (
	"slices"
	"testing"
)

func TestParseProducts(t *testing.T) {
	got, err := parseProducts(" 3, 1 ,2")
	if err != nil || !slices.Equal(got, []int64{3, 1, 2}) {
		t.Fatalf("parseProducts = %v, %v", got, err)
	}
	if got, err := parseProducts(""); err != nil || got != nil {
		t.Fatalf("empty: %v, %v; want idle (nil)", got, err)
	}
	for _, bad := range []string{"1,,2", "x", "-4", "0"} {
		if _, err := parseProducts(bad); err == nil {
			t.Errorf("parseProducts(%q) accepted", bad)
		}
	}
}

func TestRunNeedsSecret(t *testing.T) {
	t.Setenv("NELLIS_LOADGEN_SECRET", "")
	if err := run([]string{"-clients", "1"}); err == nil || err.Error() != "no secret: set NELLIS_LOADGEN_SECRET" {
		t.Fatalf("run without secret: %v", err)
	}
}

func TestRunRejectsNegativeUsers(t *testing.T) {
	t.Setenv("NELLIS_LOADGEN_SECRET", "s")
	if err := run([]string{"-users", "-1"}); err == nil || err.Error() != "-users must not be negative, got -1" {
		t.Fatalf("run -users -1: %v", err)
	}
}
