package module

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// runStatusCommand runs `caddy nellis-status` as Caddy registered it,
// flags parsed by cobra, writing to out.
func runStatusCommand(ctx context.Context, out io.Writer, args ...string) error {
	registered, ok := caddycmd.Commands()["nellis-status"]
	if !ok {
		panic("nellis-status is not registered")
	}
	cmd := &cobra.Command{Use: "nellis-status"}
	registered.CobraFunc(cmd)
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(io.Discard)
	return cmd.ExecuteContext(ctx)
}

// lockedBuffer collects the frames the live view writes from its own
// goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// frames splits the output at each screen clear.
func (b *lockedBuffer) frames() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, f := range strings.Split(b.buf.String(), clearScreen) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// statusRow returns the fields of product id's row in a frame, or nil.
func statusRow(frame string, id int64) []string {
	for line := range strings.Lines(frame) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == strconv.FormatInt(id, 10) {
			return f
		}
	}
	return nil
}

// rowSeq is the SEQ column of a row (PRODUCT SOURCE BREAKER LAST-EVENT
// LAST-BYTE SUBS SEQ ...), -1 when absent.
func rowSeq(row []string) int {
	if len(row) < 7 {
		return -1
	}
	n, err := strconv.Atoi(row[6])
	if err != nil {
		return -1
	}
	return n
}

// TestNellisStatusCommand runs `caddy nellis-status` against a running
// gateway: one frame lists every watched lot on SSE; the live view then
// redraws, and a rival's bid shows as the lot's sequence number rising.
func TestNellisStatusCommand(t *testing.T) {
	sim, simURL := newSimulator(t)
	loadCaddy(t, noGatewayConfig)
	loadCaddy(t, gatewayConfig(simURL, t.TempDir(), ""))

	lots := sim.Auctions()
	for _, lot := range lots {
		ext, _, err := dialExtension(t, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		ext.monitor(lot.ID)
	}
	eventually(t, 5*time.Second, "every lot on sse", func() bool {
		return adminReport(t).Totals.OpenStreams == len(lots)
	})

	var once bytes.Buffer
	if err := runStatusCommand(context.Background(), &once, "--once", "--address", "localhost:2999"); err != nil {
		t.Fatal(err)
	}
	frame := once.String()
	t.Logf("nellis-status --once:\n%s", frame)
	if strings.Contains(frame, "\x1b") {
		t.Errorf("--once output carries terminal codes: %q", frame)
	}
	if !strings.Contains(frame, "feeds 3 (sse 3)") || !strings.Contains(frame, "clients 3 connected, 3 authenticated") {
		t.Errorf("totals missing:\n%s", frame)
	}
	for _, lot := range lots {
		row := statusRow(frame, lot.ID)
		if len(row) < 7 || row[1] != "sse" || row[2] != "closed" || row[5] != "1" {
			t.Errorf("lot %d: row %q, want on sse, breaker closed, one subscriber\n%s", lot.ID, row, frame)
		}
	}

	// The live view, redrawing every 100ms until cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var live lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- runStatusCommand(ctx, &live, "--address", "localhost:2999", "--interval", "100ms")
	}()
	lot := lots[0]
	before := -1
	eventually(t, 3*time.Second, "a first frame", func() bool {
		if f := live.frames(); len(f) > 0 {
			before = rowSeq(statusRow(f[len(f)-1], lot.ID))
		}
		return before > 0
	})
	if err := sim.EmitBid(lot.ID, lot.CurrentBid+5, "rival-status"); err != nil {
		t.Fatal(err)
	}
	var last string
	eventually(t, 3*time.Second, "the bid in a later frame", func() bool {
		f := live.frames()
		last = f[len(f)-1]
		return rowSeq(statusRow(last, lot.ID)) > before
	})
	if !strings.Contains(last, "writes in the last") {
		t.Errorf("live frame without the latency between frames:\n%s", last)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("live view ended with %v, want a clean exit", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("live view still running after cancel")
	}

	// Unload the gateway: its feeds must not outlive this test's simulator
	// into the next test.
	loadCaddy(t, noGatewayConfig)
}

// The command's own errors, without a gateway.
func TestNellisStatusCommandErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--once", "--interval", "0s"}, "--interval must be positive"},
		{[]string{"--once", "--address", "localhost:1"}, "cannot reach the admin API at localhost:1"},
		{[]string{"--once", "--address", "unix/" + t.TempDir() + "/none.sock"}, "cannot reach the admin API"},
		{[]string{"--once", "--address", "localhost:1-5"}, "port range"},
		{[]string{"--once", "--address", "fd/3"}, "file descriptor"},
	} {
		err := runStatusCommand(context.Background(), io.Discard, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want one containing %q", c.args, err, c.want)
		}
	}
}

func TestNellisStatusCommandDefaults(t *testing.T) {
	cmd := &cobra.Command{}
	caddycmd.Commands()["nellis-status"].CobraFunc(cmd)
	for flag, want := range map[string]string{"address": "localhost:2019", "interval": "1s", "once": "false"} {
		if got := cmd.Flags().Lookup(flag); got == nil || got.DefValue != want {
			t.Errorf("--%s default: %v, want %s", flag, got, want)
		}
	}
}
