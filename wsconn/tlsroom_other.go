//go:build !linux || nellis_portable

package wsconn

import (
	"syscall"
	"time"
)

// roomCheck needs Linux's SO_MEMINFO; elsewhere every TLS frame goes
// through the writer goroutine.
type roomCheck struct{}

func (*roomCheck) takes(syscall.RawConn, int, time.Time) bool { return false }

func (*roomCheck) forget() {}
