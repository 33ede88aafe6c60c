package wsrelay

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/nellis-edge/gateway/internal/childproc"
)

func TestMain(m *testing.M) {
	childproc.RunWork(map[string]childproc.Work{"idle-clients": runIdleClients, "shared-setup": runSharedSetup})
	goleak.VerifyTestMain(m)
}
