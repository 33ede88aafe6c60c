package e2e

import (
	"os"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// runAsCaddy, set to 1 in a child's environment, makes this test binary
// Caddy itself, as cmd/caddy builds it (the standard modules and ours),
// so a test can start, signal and reap a real Caddy process without
// building one first.
const runAsCaddy = "NELLIS_E2E_RUN_CADDY"

func TestMain(m *testing.M) {
	if os.Getenv(runAsCaddy) == "1" {
		caddycmd.Main()
		return
	}
	os.Exit(m.Run())
}
