package sseupstream

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(simChildEnv) != "" {
		// BenchmarkStreamCost's simulator, in a process of its own so
		// that its memory and CPU are not counted as the streams'.
		os.Exit(serveSimChild())
	}
	goleak.VerifyTestMain(m)
}
