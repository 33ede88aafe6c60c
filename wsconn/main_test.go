package wsconn

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/nellis-edge/gateway/internal/childproc"
)

func TestMain(m *testing.M) {
	childproc.RunWork(map[string]childproc.Work{"idle-clients": runIdleClients})
	goleak.VerifyTestMain(m)
}
