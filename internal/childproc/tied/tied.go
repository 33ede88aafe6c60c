// Package tied starts child processes that do not outlive the process
// that starts them, however it ends: a test binary killed by go test's
// timeout, a panic or SIGKILL runs no cleanup, and its children (Caddy
// nodes, some frozen by SIGSTOP) would go on holding the ports the next
// run needs. On Linux the kernel kills such a child (PR_SET_PDEATHSIG);
// elsewhere a child is started as usual and may outlive its parent.
package tied

import (
	"os/exec"
	"runtime"
	"sync"
)

// Cmd is a started child tied to this process.
type Cmd struct {
	*exec.Cmd
	release chan struct{}
	once    sync.Once
}

// Start starts cmd tied to this process. Use the returned Cmd's Wait,
// not cmd.Wait.
//
// The kernel sends the parent-death signal when the *thread* that forked
// the child exits, not the process. Go ends a thread when a goroutine
// locked to it exits, so a thread the child was forked from could end
// while the test still runs, killing the child under it. Start therefore
// forks from a goroutine locked to its thread that holds the thread,
// running nothing else, until Wait has reaped the child (or the process
// ends).
func Start(cmd *exec.Cmd) (*Cmd, error) {
	setDeathSignal(cmd)
	c := &Cmd{Cmd: cmd, release: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			<-c.release
		}
		runtime.UnlockOSThread()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// Wait waits for the child to exit, as exec.Cmd.Wait, and lets the
// thread it was forked from go.
func (c *Cmd) Wait() error {
	err := c.Cmd.Wait()
	c.once.Do(func() { close(c.release) })
	return err
}
