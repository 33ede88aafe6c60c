package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nellis-edge/gateway/bench/benchcert"
	"github.com/nellis-edge/gateway/bench/loadgen"
)

// gatewayConfig is the bench Caddyfile: the gateway alone on a loopback
// port, following the simulator. The limits meant for real extensions are
// opened up, because every bench client comes from 127.0.0.1:
// connections_per_minute, max_unauthenticated and its per-address share
// would otherwise refuse the connection storm; so would
// auth_failures_per_minute, whose budget each sign-in holds until its
// token is checked (with the relay's lock busy, more than ten sign-ins in
// flight from 127.0.0.1 were refused); and a client still waiting
// for its sign-in under the storm's load is not an idle stranger. writeConfig adapts it and adds the users.
// A TLS scenario's site is https:// with the run's generated certificate
// (bench/benchcert, `tls cert key`): Caddy terminates TLS as it does for
// the extension's wss://, without its local CA writing state anywhere;
// auto_https makes no :80 redirect listener (the driver may run as root).
// max_sockets_per_user is the default, 20, unless the clients share users:
// a deployment with the old shared token raises it to its extensions'
// count, as the shared-token scenarios do.
const gatewayConfig = `{
	admin %[4]s
	persist_config off
	storage file_system %[1]s
	log {
		level WARN
	}
	nellis {
		sse_endpoint %[2]s
		api_endpoint %[2]s
		user u0 {$NELLIS_BENCH_TOKEN}
		connections_per_minute 10000000
		max_unauthenticated 100000
		max_unauthenticated_per_address 100000
		auth_failures_per_minute 1000000
		auth_timeout 1m
		max_sockets_per_user %[7]d
		%[8]s
	}
	auto_https disable_redirects
}

%[3]s://127.0.0.1:%[5]d {
	bind 127.0.0.1
	%[6]s
	nellis_ws /ws
	nellis_api /health*
}
`

// gatewayOptions say what a bench gateway serves.
type gatewayOptions struct {
	simURL string // the simulator it follows
	secret string // the run's secret, from which the users' tokens derive
	users  int    // users in the config, u0 … u<users-1>
	// socketsPerUser is max_sockets_per_user; 0 keeps the default (20).
	socketsPerUser int
	admin          bool // the admin endpoint on (profiles)
	// tls, when set, makes the site https:// with this certificate.
	tls *benchcert.Files
	// nellisLines are a scenario's own settings for the nellis block.
	nellisLines []string
	// api mounts the extension's REST calls (nellis_api /api/*): bidders
	// sync their cookies there.
	api bool
}

// writeConfig writes the gateway's JSON config into dir and returns its
// path: the Caddyfile above, adapted by caddy itself, with one user per
// client as in real use (one extension, one user; loadgen.Token derives the
// tokens), or fewer when the clients share users. The users are added to
// the JSON rather than written as `user`
// lines because adapting a Caddyfile with N users takes O(N²) (each
// subdirective is merged by re-encoding the whole app, module/merge.go):
// 10,000 users took about two minutes. The file holds the tokens, so it
// lives in the run's private scratch directory, mode 0600.
func writeConfig(caddy, dir string, o gatewayOptions, port, adminPort int) (string, error) {
	caddyfile := filepath.Join(dir, "Caddyfile")
	admin := "off"
	if adminPort > 0 {
		admin = fmt.Sprintf("127.0.0.1:%d", adminPort)
	}
	body := caddyfileText(dir, o, port, admin)
	if err := os.WriteFile(caddyfile, []byte(body), 0o600); err != nil {
		return "", err
	}
	adapt := exec.Command(caddy, "adapt", "--config", caddyfile, "--adapter", "caddyfile")
	adapt.Env = append(os.Environ(), "NELLIS_BENCH_TOKEN="+loadgen.Token(o.secret, 0))
	var stderr strings.Builder
	adapt.Stderr = &stderr
	raw, err := adapt.Output()
	if err != nil {
		return "", fmt.Errorf("caddy adapt: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var config map[string]any
	if err := json.Unmarshal(raw, &config); err != nil {
		return "", fmt.Errorf("caddy adapt output: %w", err)
	}
	apps, _ := config["apps"].(map[string]any)
	nellis, _ := apps["nellis"].(map[string]any)
	if nellis == nil {
		return "", errors.New("caddy adapt output has no apps.nellis")
	}
	list := make([]map[string]string, o.users)
	for i := range list {
		list[i] = map[string]string{"name": loadgen.UserName(i), "token": loadgen.Token(o.secret, i)}
	}
	nellis["users"] = list
	out, err := json.Marshal(config)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "caddy.json")
	return path, os.WriteFile(path, out, 0o600)
}

// caddyfileText is gatewayConfig for o, the site on port.
func caddyfileText(dir string, o gatewayOptions, port int, admin string) string {
	scheme, siteLines := "http", ""
	if o.tls != nil {
		scheme, siteLines = "https", fmt.Sprintf("tls %q %q", o.tls.Cert, o.tls.Key)
	}
	if o.api {
		siteLines += "\n\tnellis_api /api/*"
	}
	perUser := o.socketsPerUser
	if perUser <= 0 {
		perUser = 20
	}
	return fmt.Sprintf(gatewayConfig, filepath.Join(dir, "storage"), o.simURL, scheme, admin, port, siteLines, perUser,
		strings.Join(o.nellisLines, "\n\t\t"))
}

// gateway is a running bin/caddy.
type gateway struct {
	cmd       *exec.Cmd
	port      int
	adminPort int    // 0: admin off
	log       string // its stderr, for errors
	done      chan error
	scheme    string       // http or https
	client    *http.Client // trusts the run's certificate
}

// startGateway writes the config into dir, starts caddy and waits until it
// answers /health/live.
func startGateway(ctx context.Context, caddy, dir string, o gatewayOptions) (*gateway, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort := 0
	if o.admin {
		if adminPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	cfg, err := writeConfig(caddy, dir, o, port, adminPort)
	if err != nil {
		return nil, err
	}
	client, err := trustingClient(o.tls)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "caddy.log")
	cmd := exec.Command(caddy, "run", "--config", cfg)
	cmd.Env = append(os.Environ(),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
	)
	done, err := startLogged(cmd, logPath)
	if err != nil {
		return nil, err
	}
	g := &gateway{cmd: cmd, port: port, adminPort: adminPort, log: logPath, done: done, scheme: "http", client: client}
	if o.tls != nil {
		g.scheme = "https"
	}
	if err := g.waitHealthy(ctx, 20*time.Second); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}

func (g *gateway) pid() int { return g.cmd.Process.Pid }
func (g *gateway) wsURL() string {
	if g.scheme == "https" {
		return fmt.Sprintf("wss://127.0.0.1:%d/ws", g.port)
	}
	return fmt.Sprintf("ws://127.0.0.1:%d/ws", g.port)
}

func (g *gateway) waitHealthy(ctx context.Context, limit time.Duration) error {
	url := fmt.Sprintf("%s://127.0.0.1:%d/health/live", g.scheme, g.port)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-g.done:
			g.done <- err
			return fmt.Errorf("gateway exited: %v; log: %s", err, g.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := g.client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("gateway not healthy after %s; log: %s", limit, g.tail())
}

// profile saves a CPU profile of the gateway over d to path, through
// Caddy's admin endpoint /debug/pprof.
func (g *gateway) profile(d time.Duration, path string) error {
	return g.pprof(fmt.Sprintf("profile?seconds=%d", int(d.Seconds())), path)
}

// heapProfile saves the gateway's live heap, after a collection, to path.
func (g *gateway) heapProfile(path string) error {
	return g.pprof("heap?gc=1", path)
}

func (g *gateway) pprof(what, path string) error {
	return g.fetchAdmin("/debug/pprof/"+what, path)
}

// fetchAdmin saves what the admin endpoint answers at uri to path.
func (g *gateway) fetchAdmin(uri, path string) error {
	if g.adminPort == 0 {
		return errors.New("profile: the gateway runs without its admin endpoint")
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", g.adminPort, uri)
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stop interrupts caddy (a graceful stop) and kills it after 10 s.
func (g *gateway) stop() error {
	_ = g.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-g.done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return err
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
		return errors.New("gateway did not stop within 10s; killed")
	}
}

// tail is the end of the gateway's log.
func (g *gateway) tail() string {
	b, _ := os.ReadFile(g.log)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before caddy binds it; caddy then fails to start, loudly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// trustingClient is the health check's HTTP client: for a TLS gateway it
// trusts the run's certificate alone, as the load generator does.
func trustingClient(f *benchcert.Files) (*http.Client, error) {
	if f == nil {
		return &http.Client{Timeout: 5 * time.Second}, nil
	}
	pem, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", f.Cert)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, DisableKeepAlives: true}
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}, nil
}
