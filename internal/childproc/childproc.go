// Package childproc runs a test binary again as a child process, for
// tests and benchmarks whose clients or servers must not share the
// process they measure (its memory, its file descriptors). The child is
// chosen by its environment: the package's TestMain sees the variable,
// runs the child's work, writes one line and holds until its stdin
// closes. StartWork and RunWork are that for the common case, n clients
// of one URL.
package childproc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/internal/childproc/tied"
)

// Child is a running child process of the test binary.
type Child struct {
	cmd   *tied.Cmd
	stdin io.WriteCloser
	once  sync.Once
	err   error
}

// Start runs this test binary again, running no tests, with env
// ("NAME=value") added to its environment, and returns once the child has
// written its first line, which it returns. The child ends at the latest
// when the test does, or, on Linux, when this process dies without
// cleaning up (see package tied).
func Start(tb testing.TB, env ...string) (*Child, string) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	started, err := tied.Start(cmd)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Child{cmd: started, stdin: stdin}
	tb.Cleanup(func() { _ = c.Stop() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("child process: %q %v", line, err)
	}
	return c, line
}

// StartReady is Start for a child that says "ready" once its work is
// done (see Ready).
func StartReady(tb testing.TB, env ...string) *Child {
	tb.Helper()
	c, line := Start(tb, env...)
	if line != "ready\n" {
		tb.Fatalf("child process: %q", line)
	}
	return c
}

// Stop closes the child's stdin, the sign to end, and waits for it to
// exit; it returns how the child ended. Stopping again returns the same.
func (c *Child) Stop() error {
	c.once.Do(func() {
		_ = c.stdin.Close()
		c.err = c.cmd.Wait()
	})
	return c.err
}

// A Work is a child's work: it opens n clients of url, says ready (Ready)
// and holds them until its stdin closes. It returns the child's exit
// code.
type Work func(url string, n int) int

// workEnv names the work a child runs, as "<name> <n> <url>".
const workEnv = "NELLIS_CHILD_WORK"

// StartWork starts a child that runs the work its TestMain registers as
// name (see RunWork) for n clients of url, and returns once it is ready.
func StartWork(tb testing.TB, name, url string, n int) *Child {
	tb.Helper()
	return StartReady(tb, fmt.Sprintf("%s=%s %d %s", workEnv, name, n, url))
}

// RunWork, first in TestMain, runs the work this process was started for
// by StartWork, one of works by name, and exits with its code. In a
// process started to run tests it returns at once.
func RunWork(works map[string]Work) {
	spec := os.Getenv(workEnv)
	if spec == "" {
		return
	}
	var name, url string
	var n int
	if _, err := fmt.Sscan(spec, &name, &n, &url); err != nil {
		fmt.Fprintf(os.Stderr, "child work %q: %v\n", spec, err)
		os.Exit(2)
	}
	work, ok := works[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "child work %q: no such work\n", name)
		os.Exit(2)
	}
	os.Exit(work(url, n))
}

// HoldSockets is a Work's usual body: it opens n WebSockets of url with
// dialer, one after the other, runs each (when not nil) on each as it
// opens, says ready, and holds them all until its stdin closes. It
// returns the child's exit code, 1 on the first failure, told on stderr.
func HoldSockets(dialer *websocket.Dialer, url string, n int, each func(*websocket.Conn) error) int {
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, ws := range conns {
			ws.Close()
		}
	}()
	for range n {
		ws, _, err := dialer.Dial(url, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		conns = append(conns, ws)
		if each == nil {
			continue
		}
		if err := each(ws); err != nil {
			fmt.Fprintln(os.Stderr, "socket", len(conns), err)
			return 1
		}
	}
	Ready()
	return 0
}

// Ready is the child's side of StartReady: it says "ready" and holds
// until the parent stops it.
func Ready() {
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// Mem is the heap and stack memory in use by this process.
type Mem struct{ Heap, Stack int64 }

// MemInUse is the memory in use now, after two collections so that only
// live memory counts.
func MemInUse() Mem {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return Mem{Heap: int64(m.HeapInuse), Stack: int64(m.StackInuse)}
}

// ReportPerConn reports what each of n connections holds of the memory
// grown from before to after: all of it as B/conn, the stacks alone as
// stackB/conn.
func ReportPerConn(b *testing.B, before, after Mem, n int) {
	b.ReportMetric(float64(after.Heap+after.Stack-before.Heap-before.Stack)/float64(n), "B/conn")
	b.ReportMetric(float64(after.Stack-before.Stack)/float64(n), "stackB/conn")
}
