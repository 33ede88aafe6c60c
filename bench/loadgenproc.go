package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nellis-edge/gateway/bench/benchcert"
	"github.com/nellis-edge/gateway/bench/loadgen"
	"github.com/nellis-edge/gateway/internal/childproc/tied"
)

// loadgenProc is one running nellis-loadgen and its JSON line pipe.
type loadgenProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	log   string
	lines chan []byte // stdout lines, read by one goroutine that ends at EOF
	done  chan error
}

// loadgenOptions are a load generator's settings beyond its clients.
type loadgenOptions struct {
	users int              // users the clients share (-users); 0: one each
	tls   *benchcert.Files // the certificate to trust for wss:// (-ca)
	flags []string         // more of its command line (a scenario's own)
}

// startLoadgen starts a load generator with n clients, the users first to
// first+n-1 (or shared, o.users), monitoring products (none: idle clients).
func startLoadgen(bin, dir, name, url, token string, first, n int, products []int64, o loadgenOptions) (*loadgenProc, error) {
	ids := make([]string, len(products))
	for i, id := range products {
		ids[i] = strconv.FormatInt(id, 10)
	}
	args := []string{"-url", url, "-first", strconv.Itoa(first), "-clients", strconv.Itoa(n),
		"-products", strings.Join(ids, ","), "-users", strconv.Itoa(o.users)}
	if o.tls != nil {
		args = append(args, "-ca", o.tls.Cert)
	}
	args = append(args, o.flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NELLIS_LOADGEN_SECRET="+token)
	return startPiped(cmd, filepath.Join(dir, name+".log"))
}

// startPiped starts cmd with its stdin and stdout as the JSON line pipe
// and its stderr into logPath. The floor server (floorproc.go) speaks the
// same way.
func startPiped(cmd *exec.Cmd, logPath string) (*loadgenProc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	started, err := tied.Start(cmd) // dies with the driver, as startLogged's
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &loadgenProc{cmd: cmd, in: in, log: logPath, lines: make(chan []byte, 2), done: make(chan error, 1)}
	p.out = bufio.NewScanner(stdout)
	p.out.Buffer(make([]byte, 64<<10), 16<<20)
	// One goroutine reads stdout to EOF (the process has exited or closed
	// it) and only then waits: Wait closes the pipe, which would lose a
	// result line not yet read.
	go func() {
		for p.out.Scan() {
			p.lines <- append([]byte(nil), p.out.Bytes()...)
		}
		close(p.lines)
		p.done <- started.Wait()
	}()
	return p, nil
}

func (p *loadgenProc) pid() int { return p.cmd.Process.Pid }

// next reads the next JSON line into v within limit.
func (p *loadgenProc) next(v any, limit time.Duration) error {
	select {
	case line, ok := <-p.lines:
		if !ok {
			return fmt.Errorf("load generator ended: %s", p.tail())
		}
		if err := json.Unmarshal(line, v); err != nil {
			return fmt.Errorf("load generator said %q: %w", line, err)
		}
		return nil
	case <-time.After(limit):
		return fmt.Errorf("load generator silent for %s: %s", limit, p.tail())
	}
}

func (p *loadgenProc) ready(limit time.Duration) (loadgen.Ready, error) {
	var r loadgen.Ready
	return r, p.next(&r, limit)
}

// send writes v as one JSON line: a loadgen.Plan, or a floor.Order.
func (p *loadgenProc) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = p.in.Write(append(b, '\n'))
	return err
}

func (p *loadgenProc) result(limit time.Duration) (loadgen.Result, error) {
	var r loadgen.Result
	return r, p.next(&r, limit)
}

// stop closes stdin, which a load generator waiting for its plan treats as
// the end, interrupts it and waits; after 10 s it is killed.
func (p *loadgenProc) stop() error {
	_ = p.in.Close()
	_ = p.cmd.Process.Signal(os.Interrupt)
	go func() { // unread lines must not block the reader
		for range p.lines {
		}
	}()
	select {
	case err := <-p.done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return err
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

func (p *loadgenProc) tail() string {
	b, _ := os.ReadFile(p.log)
	s := strings.TrimSpace(string(b))
	if len(s) > 1000 {
		s = "…" + s[len(s)-1000:]
	}
	return s
}
