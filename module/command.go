package module

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/nellis-edge/gateway/statusview"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "nellis-status",
		Usage: "[--address <admin>] [--interval <duration>] [--once]",
		Short: "Shows every Nellis feed live: source, breaker, freshness, subscribers, latency",
		Long: `
Reads the gateway's status from the admin API (/nellis/feeds) and redraws it
every --interval: one row per watched product with where its prices come from
(sse or poll), its stream breaker, the age of the stream's last event and
byte, its subscribers, its sequence number and when it is polled next; above
them the totals (feeds by source, open streams, stale feeds, connections) and
the delivery latency of the writes since the previous frame.

--address is the admin API's address, as in Caddy's admin option
(host:port or unix/<path>). --once prints one frame without clearing the
screen and exits: for scripts, or to paste into a ticket.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("address", caddy.DefaultAdminListen, "The address of Caddy's admin API")
			cmd.Flags().Duration("interval", time.Second, "Time between redraws")
			cmd.Flags().Bool("once", false, "Print one frame and exit")
			cmd.RunE = runNellisStatus
		},
	})
}

// clearScreen moves the cursor home and clears the terminal (ANSI).
const clearScreen = "\x1b[H\x1b[2J"

// statusRequestTimeout bounds one read of the admin API.
const statusRequestTimeout = 5 * time.Second

func runNellisStatus(cmd *cobra.Command, _ []string) error {
	fl := cmd.Flags()
	addr, _ := fl.GetString("address")
	interval, _ := fl.GetDuration("interval")
	once, _ := fl.GetBool("once")
	if interval <= 0 {
		return fmt.Errorf("--interval must be positive, got %s", interval)
	}
	client, err := newAdminClient(addr)
	if err != nil {
		return err
	}
	defer client.close()
	cmd.SilenceUsage = true // from here on, errors are not about usage

	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	out := cmd.OutOrStdout()
	if once {
		r, err := client.report(ctx)
		if err != nil {
			return err
		}
		_, err = io.WriteString(out, statusview.Render(statusview.Frame{Address: addr, Report: r}))
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return watchStatus(ctx, client, interval, out)
}

// watchStatus redraws the status every interval until ctx ends (Ctrl-C),
// which is a normal exit. An unreachable gateway is shown, not fatal: the
// view recovers when the gateway comes back, as after a restart.
func watchStatus(ctx context.Context, client *adminClient, interval time.Duration, out io.Writer) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var prev *statusview.Report
	for {
		r, err := client.report(ctx)
		if ctx.Err() != nil {
			return nil
		}
		frame := ""
		if err != nil {
			frame = fmt.Sprintf("nellis edge · %s · %s\n\n%v\nretrying every %s\n",
				client.addr, time.Now().UTC().Format("2006-01-02 15:04:05 MST"), err, interval)
		} else {
			frame = statusview.Render(statusview.Frame{Address: client.addr, Report: r, Prev: prev})
			prev = &r
		}
		if _, err := io.WriteString(out, clearScreen+frame); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// adminClient reads the status from Caddy's admin API. It keeps one
// connection across frames (caddycmd.AdminAPIRequest makes a transport per
// request, which a view polling every second would pile up) and sends the
// Origin header the admin API's cross-site checks expect, as caddy's own
// commands do.
type adminClient struct {
	addr   string
	url    string
	origin string
	http   *http.Client
}

func newAdminClient(addr string) (*adminClient, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("invalid admin address %q: %w", addr, err)
	}
	if na.PortRangeSize() > 1 {
		return nil, fmt.Errorf("invalid admin address %q: a port range", addr)
	}
	c := &adminClient{addr: addr}
	var dialAddr string
	switch {
	case na.IsUnixNetwork():
		// The admin option may carry socket permissions: unix//path|0220.
		dialAddr, _, _ = strings.Cut(na.Host, "|")
		// A Host is required; the admin API ignores it on a socket.
		c.url = "http://127.0.0.1/nellis/feeds"
	case na.IsFdNetwork():
		return nil, fmt.Errorf("invalid admin address %q: a file descriptor cannot be dialled", addr)
	default:
		dialAddr = na.JoinHostPort(0)
		c.url = "http://" + dialAddr + "/nellis/feeds"
		c.origin = "http://" + dialAddr
	}
	c.http = &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, na.Network, dialAddr)
			},
			MaxIdleConns: 1,
		},
		Timeout: statusRequestTimeout,
	}
	return c, nil
}

// maxReportSize bounds the answer read: a report takes under 300 bytes
// per feed (BenchmarkReportJSON), so this allows about 100,000 feeds.
const maxReportSize = 32 << 20

func (c *adminClient) report(ctx context.Context) (statusview.Report, error) {
	var r statusview.Report
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return r, err
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return r, fmt.Errorf("cannot reach the admin API at %s: %w", c.addr, err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return r, fmt.Errorf("the admin API at %s has no /nellis/feeds: is this Caddy built with Nellis Edge?", c.addr)
	default:
		return r, fmt.Errorf("the admin API at %s answered %s%s", c.addr, res.Status, apiErrorMessage(res.Body))
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxReportSize)).Decode(&r); err != nil {
		return r, fmt.Errorf("read /nellis/feeds from %s: %w", c.addr, err)
	}
	return r, nil
}

// apiErrorMessage extracts the message of Caddy's admin error body
// ({"error": "..."}), as ": message", or "" when there is none.
func apiErrorMessage(body io.Reader) string {
	var e struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(body, 64<<10)).Decode(&e); err != nil || e.Error == "" {
		return ""
	}
	return ": " + e.Error
}

func (c *adminClient) close() { c.http.CloseIdleConnections() }
