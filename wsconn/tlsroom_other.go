//go:build !linux || nellis_portable

package wsconn

import "syscall"

// kernelTakes needs Linux's SIOCOUTQ; elsewhere every TLS frame goes
// through the writer goroutine.
func kernelTakes(syscall.RawConn, int) bool { return false }
