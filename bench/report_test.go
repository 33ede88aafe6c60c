package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		measured, bound float64
		atMost          bool
		want            string
	}{
		{1.2, 1.5, true, "met"},
		{3, 1.5, true, "**missed** by 1.50 ms (2.0×)"},
		{120_000, 100_000, false, "met"},
		{40_000, 100_000, false, "**missed** by 60000 ms (0.4×)"},
	} {
		if got := verdict(tc.measured, tc.bound, tc.atMost, " ms"); got != tc.want {
			t.Errorf("verdict(%v, %v, %v) = %q, want %q", tc.measured, tc.bound, tc.atMost, got, tc.want)
		}
	}
}

// The figures replace what lies between the markers; the hand-written
// text around them stays.
func TestWriteSectionKeepsHandWrittenText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	old := "# B\n\nintro\n\n" + beginMarker + "\nold figures\n" + endMarker + "\n\n## Analysis\nmine\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(path, beginMarker+"\nnew figures\n"+endMarker+"\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# B\n\nintro\n\n" + beginMarker + "\nnew figures\n" + endMarker + "\n\n## Analysis\nmine\n"
	if string(got) != want {
		t.Fatalf("file =\n%s\nwant\n%s", got, want)
	}
	if err := os.WriteFile(path, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(path, "x"); err == nil || !strings.Contains(err.Error(), "markers") {
		t.Fatalf("file without markers: %v", err)
	}
}
