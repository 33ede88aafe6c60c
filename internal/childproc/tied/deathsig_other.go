//go:build !linux

package tied

import "os/exec"

// setDeathSignal does nothing: only Linux has a parent-death signal, so
// here a child can outlive a parent that dies without cleaning up.
func setDeathSignal(*exec.Cmd) {}
