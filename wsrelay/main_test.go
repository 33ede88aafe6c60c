package wsrelay

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(idleClientsEnv); url != "" {
		os.Exit(runIdleClients(url, os.Getenv(idleCountEnv)))
	}
	if url := os.Getenv(sharedSetupEnv); url != "" {
		os.Exit(runSharedSetup(url, os.Getenv(sharedCountEnv)))
	}
	goleak.VerifyTestMain(m)
}
