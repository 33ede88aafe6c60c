package tied

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startParent runs this test binary as a parent process that starts a
// sleeper the way how says (runParent), and returns the parent and the
// sleeper's pid. Both are killed when the test ends.
func startParent(t *testing.T, how string) (*exec.Cmd, int) {
	t.Helper()
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), parentEnv+"="+how)
	parent.Stderr = os.Stderr
	stdin, err := parent.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		_ = parent.Process.Kill()
		_ = parent.Wait()
		t.Fatalf("parent said %q (%v)", line, err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = parent.Process.Kill()
		_ = parent.Wait()
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return parent, pid
}

// alive tells whether process pid runs, stopped or not: a zombie waiting
// for a reaper (pid 1 of a container may be slow to reap one) is dead.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// TestChildDiesWithItsParent kills the parent process with SIGKILL, so it
// runs no cleanup at all, and checks its child went with it, also a child
// frozen by SIGSTOP as the stalled-owner test leaves one.
func TestChildDiesWithItsParent(t *testing.T) {
	for _, stopped := range []bool{false, true} {
		t.Run(fmt.Sprintf("stopped=%t", stopped), func(t *testing.T) {
			parent, child := startParent(t, "plain")
			if !alive(child) {
				t.Fatal("the child is not running while its parent runs")
			}
			if stopped {
				if err := syscall.Kill(child, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			}
			if err := parent.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = parent.Wait()
			deadline := time.Now().Add(5 * time.Second)
			for alive(child) {
				if time.Now().After(deadline) {
					t.Fatalf("child %d still runs 5 s after its parent was killed", child)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestChildOutlivesTheThreadThatAsked: the parent-death signal follows the
// thread that forked the child. A caller locked to a thread that then
// ends (its goroutine exits locked) must not take the child with it while
// the parent process still runs.
func TestChildOutlivesTheThreadThatAsked(t *testing.T) {
	_, child := startParent(t, "from-locked-thread")
	// The caller's goroutine ended before the pid was printed; give the
	// kernel time to end its thread and deliver a signal if one were due.
	time.Sleep(500 * time.Millisecond)
	if !alive(child) {
		t.Fatal("the child died when the thread of the goroutine that started it ended, its parent still running")
	}
}
