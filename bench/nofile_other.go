//go:build !unix

package main

// openFilesLimit has no getrlimit(2) here; the benchmark runs on Linux,
// and elsewhere it only has to compile.
func openFilesLimit() uint64 { return 0 }
