//go:build !unix

package loadgen

import "time"

// cpuTime has no getrusage(2) here, so the load generator reports 0 CPU
// seconds; the benchmark that reads the figure runs on Linux.
func cpuTime() time.Duration { return 0 }
