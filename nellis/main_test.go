package nellis

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// samplesDir holds copies of the sample payloads (PROVENANCE.md says
// where each comes from): the repository stands alone.
var samplesDir = filepath.Join("testdata", "samples")

// readSample reads a file under samplesDir.
func readSample(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{samplesDir}, parts...)...))
	if err != nil {
		t.Fatalf("reading sample: %v", err)
	}
	return b
}
