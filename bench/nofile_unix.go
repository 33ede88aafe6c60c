//go:build unix

package main

import "syscall"

// openFilesLimit is this process's soft limit on open files (RLIMIT_NOFILE),
// which bounds the sockets one load generator holds.
func openFilesLimit() uint64 {
	var nofile syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	return uint64(nofile.Cur)
}
