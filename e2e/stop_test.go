package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/internal/childproc/tied"
)

// The stop tests run the demo as a process of its own and stop it as a
// user does. Their ports are used by no other test, so they may run beside
// package module's tests and this package's in-process Caddy.
const (
	stopAdminPort   = 2997
	stopGatewayPort = 9180
	stopSimPort     = 9181
)

var (
	stopAdmin   = fmt.Sprintf("http://localhost:%d", stopAdminPort)
	stopGateway = fmt.Sprintf("localhost:%d", stopGatewayPort)
	stopSimURL  = fmt.Sprintf("http://127.0.0.1:%d", stopSimPort)
)

// stopDemoConfig is Caddyfile.demo, as demoConfig prepares it, moved to
// the stop tests' ports.
func stopDemoConfig(t *testing.T) string {
	t.Helper()
	cfg := demoConfig(t)
	for old, repl := range map[string]string{
		fmt.Sprintf("localhost:%d", demoAdminPort): fmt.Sprintf("localhost:%d", stopAdminPort),
		":8080": fmt.Sprintf(":%d", stopGatewayPort),
		":9081": fmt.Sprintf(":%d", stopSimPort),
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("the demo config no longer contains %q", old)
		}
		cfg = strings.ReplaceAll(cfg, old, repl)
	}
	return cfg
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// caddyProcess is this test binary running as Caddy (see TestMain).
type caddyProcess struct {
	cmd    *tied.Cmd
	out    *lockedBuffer // stdout and stderr
	exited chan struct{} // closed when the process has been reaped
	err    error         // how it exited; read after exited is closed
}

// runCaddyProcess runs `caddy run` with the Caddyfile cfg written into
// dir and env added to its environment, until the test ends: the process
// is killed then if it is still running, and its output is logged if the
// test failed.
func runCaddyProcess(t *testing.T, dir, cfg string, env ...string) *caddyProcess {
	t.Helper()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &caddyProcess{out: new(lockedBuffer), exited: make(chan struct{})}
	cmd := caddyCommand(t, dir, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Tied: a test binary killed by go test's timeout runs no cleanup,
	// and its Caddy nodes, some frozen by SIGSTOP, would hold the ports.
	var err error
	if p.cmd, err = tied.Start(cmd); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("output of caddy (env %v):\n%s", env, p.out)
		}
	})
	return p
}

// caddyCommand is `caddy args...` as this test binary runs it.
func caddyCommand(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	// Caddy keeps its autosaved config and data under these; the test's
	// folder keeps the user's own untouched.
	cmd.Env = append(os.Environ(), runAsCaddy+"=1", "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	return cmd
}

// startCaddyProcess runs `caddy run` with the Caddyfile cfg and returns
// once the gateway answers (runCaddyProcess).
func startCaddyProcess(t *testing.T, cfg string) *caddyProcess {
	t.Helper()
	p := runCaddyProcess(t, t.TempDir(), cfg)
	waitUntil(t, 30*time.Second, "the gateway to answer", func() bool {
		select {
		case <-p.exited:
			t.Fatalf("caddy exited before it served (%v; are ports %d, %d or %d in use?)", p.err, stopAdminPort, stopGatewayPort, stopSimPort)
		default:
		}
		res, err := http.Get("http://" + stopGateway + "/health")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return p
}

// lotStreams is the simulator's count of streams for lot id.
func lotStreams(t *testing.T, id int64) (open int, opened int64) {
	t.Helper()
	return simLotStreams(t, stopSimURL, id)
}

// simLotStreams is the count of streams for lot id of the simulator at
// simURL: open now, and opened in all.
func simLotStreams(t *testing.T, simURL string, id int64) (open int, opened int64) {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("%s/_sim/stats?productId=%d", simURL, id))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st struct {
		StreamsOpened int64 `json:"streamsOpened"`
		StreamsOpen   int   `json:"streamsOpen"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.StreamsOpen, st.StreamsOpened
}

// demoClient speaks the extension's protocol to the demo's gateway.
type demoClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialDemo(t *testing.T) *demoClient {
	t.Helper()
	h := http.Header{"Origin": {"http://" + stopGateway}}
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+stopGateway+"/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &demoClient{t: t, conn: conn}
}

func (c *demoClient) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

// next reads messages until one of type typ satisfies ok (nil: any).
func (c *demoClient) next(typ string, within time.Duration, ok func(map[string]any) bool) map[string]any {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(within))
	for {
		var m map[string]any
		if err := c.conn.ReadJSON(&m); err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m["type"] == typ && (ok == nil || ok(m)) {
			return m
		}
	}
}

// priceAtLeast matches an auctionState for lot id at price or above.
func priceAtLeast(id int64, price float64) func(map[string]any) bool {
	return func(m map[string]any) bool {
		a, _ := m["auction"].(map[string]any)
		data, _ := a["data"].(map[string]any)
		bid, _ := data["currentBid"].(float64)
		return a["id"] == fmt.Sprint(id) && bid >= price
	}
}

// monitor signs in with the demo's token and watches lot id until the
// gateway has sent its state and holds its upstream stream open.
func (c *demoClient) monitor(id int64) {
	c.t.Helper()
	c.send(map[string]any{"type": "authenticate", "token": "demo-token", "requestId": "req_1"})
	if m := c.next("authenticated", 10*time.Second, nil); m["success"] != true {
		c.t.Fatalf("authenticate: %v", m)
	}
	c.send(map[string]any{
		"type": "startMonitoring", "auctionId": fmt.Sprint(id), "requestId": "req_2",
		"config":   map[string]any{"maxBid": 5, "strategy": "sniping", "incrementAmount": 1, "autoBid": false},
		"metadata": map[string]any{"source": "e2e", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", id)},
	})
	c.next("auctionState", 10*time.Second, priceAtLeast(id, 0))
	waitUntil(c.t, 10*time.Second, "the gateway's upstream stream to open", func() bool {
		open, _ := lotStreams(c.t, id)
		return open == 1
	})
}

// reloadUnchanged makes Caddy load cfg again through its admin API, as
// `caddy reload --force` does: the whole config is provisioned anew.
func reloadUnchanged(t *testing.T, cfg string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, stopAdmin+"/load", strings.NewReader(cfg))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate") // reload even though nothing changed
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("reload: %s", res.Status)
	}
}

// TestDemoStops: the demo, the simulator and the gateway following it in
// one Caddy, ends promptly when stopped the ways a user stops it (SIGTERM
// from a service manager, one Ctrl-C, `caddy stop`), also after a config
// reload, and its clients are told 1001, going away. A reload keeps the
// clients connected and the gateway's upstream stream open.
func TestDemoStops(t *testing.T) {
	signal := func(sig os.Signal) func(*testing.T, *caddyProcess) {
		return func(t *testing.T, p *caddyProcess) {
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		reload bool
		stop   func(*testing.T, *caddyProcess)
	}{
		{"SIGTERM", false, signal(syscall.SIGTERM)},
		{"Ctrl-C after a reload", true, signal(os.Interrupt)},
		{"caddy stop after a reload", true, func(t *testing.T, p *caddyProcess) {
			// `caddy stop` answers once the process has stopped its
			// apps; the exit below is what this test times.
			stop, err := tied.Start(caddyCommand(t, t.TempDir(), "stop", "--address", fmt.Sprintf("localhost:%d", stopAdminPort)))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				_ = stop.Wait()
				close(done)
			}()
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					_ = stop.Process.Kill()
					<-done
				}
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := stopDemoConfig(t)
			p := startCaddyProcess(t, cfg)
			id, _ := firstOpenLot(t, stopSimURL)
			c := dialDemo(t)
			c.monitor(id)

			if tc.reload {
				_, opened := lotStreams(t, id)
				reloadUnchanged(t, cfg)
				_, price := firstOpenLot(t, stopSimURL)
				simulateBid(t, stopSimURL, id, price+25)
				c.next("auctionState", 10*time.Second, priceAtLeast(id, float64(price+25)))
				if open, after := lotStreams(t, id); open != 1 || after != opened {
					t.Errorf("after a reload the lot has %d streams open, %d opened in all; want the same single stream (%d opened)", open, after, opened)
				}
			}

			// The client reads until its socket ends.
			ended := make(chan error, 1)
			_ = c.conn.SetReadDeadline(time.Time{})
			go func() {
				for {
					if _, _, err := c.conn.ReadMessage(); err != nil {
						ended <- err
						return
					}
				}
			}()

			// Under -race the process sleeps 1s before it exits (GORACE
			// atexit_sleep_ms), well inside the 5s allowed.
			asked := time.Now()
			tc.stop(t, p)
			select {
			case <-p.exited:
				t.Logf("caddy exited %v after it was asked to stop", time.Since(asked).Round(time.Millisecond))
			case <-time.After(5 * time.Second):
				t.Fatalf("caddy still runs 5s after it was asked to stop")
			}
			if p.err != nil {
				t.Errorf("caddy exited with %v, want success", p.err)
			}
			select {
			case err := <-ended:
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
					t.Errorf("the client's socket ended with %v, want close code 1001", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("the client's socket is still open 5s after caddy exited")
			}
		})
	}
}
