package wsconn

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(idleClientsEnv); url != "" {
		os.Exit(runIdleClients(url, os.Getenv(idleCountEnv)))
	}
	goleak.VerifyTestMain(m)
}
