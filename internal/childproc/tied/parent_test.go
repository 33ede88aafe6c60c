package tied

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
)

// parentEnv makes this test binary a parent process (runParent) instead
// of running tests: it starts `sleep` through Start, says the sleeper's
// pid and holds until its stdin closes or it is killed. Its value says
// how it starts the sleeper: "plain", or "from-locked-thread" from a
// goroutine locked to its thread that then exits, which ends that
// thread.
const parentEnv = "NELLIS_TIED_PARENT"

func runParent() {
	how := os.Getenv(parentEnv)
	if how == "" {
		return
	}
	start := func() (*Cmd, error) { return Start(exec.Command("sleep", "300")) }
	var c *Cmd
	var err error
	switch how {
	case "plain":
		c, err = start()
	case "from-locked-thread":
		// The main thread is never ended (Go parks it instead): keep the
		// caller off it by holding it here.
		runtime.LockOSThread()
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			c, err = start()
		}()
		<-done
	default:
		err = fmt.Errorf("no such way %q", how)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "parent:", err)
		os.Exit(2)
	}
	fmt.Println(c.Process.Pid)
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = c.Process.Kill()
	_ = c.Wait()
	os.Exit(0)
}
