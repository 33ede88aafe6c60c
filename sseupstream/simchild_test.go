package sseupstream

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/childproc"
	"github.com/nellis-edge/gateway/nellissim"
)

// simChildEnv, set to "<lots> <tls>", makes the test binary serve a
// simulator pinging every second instead of running tests: it prints the
// URL and the certificate file, and serves until its stdin closes.
const simChildEnv = "NELLIS_SSEUPSTREAM_SIM_CHILD"

func serveSimChild() int {
	var lots int
	var useTLS bool
	if _, err := fmt.Sscan(os.Getenv(simChildEnv), &lots, &useTLS); err != nil {
		fmt.Fprintln(os.Stderr, "sim child:", err)
		return 2
	}
	sim := nellissim.New(nellissim.Config{Seed: 1, Auctions: lots, PingInterval: time.Second, AuctionLength: 24 * time.Hour})
	sim.Start()
	defer sim.Close()
	srv, err := sim.Serve(nellissim.ServeOptions{TLS: useTLS})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sim child:", err)
		return 1
	}
	defer srv.Close()
	certFile := "-"
	if useTLS {
		f, err := os.CreateTemp("", "sim-ca-*.pem")
		if err != nil {
			fmt.Fprintln(os.Stderr, "sim child:", err)
			return 1
		}
		defer os.Remove(f.Name())
		_, _ = f.Write(srv.CertPEM)
		f.Close()
		certFile = f.Name()
	}
	ids := make([]string, 0, lots)
	for _, a := range sim.Auctions() {
		ids = append(ids, strconv.FormatInt(a.ID, 10))
	}
	fmt.Printf("%s %s %s\n", srv.URL, certFile, strings.Join(ids, ","))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// simChild is a simulator in a child process.
type simChild struct {
	url  string
	cert []byte
	ids  []int64
}

func startSimChild(tb testing.TB, lots int, useTLS bool) *simChild {
	tb.Helper()
	_, line := childproc.Start(tb, fmt.Sprintf("%s=%d %t", simChildEnv, lots, useTLS))
	c := &simChild{}
	fields := strings.Fields(line)
	if len(fields) != 3 {
		tb.Fatalf("sim child said %q", line)
	}
	c.url = fields[0]
	if fields[1] != "-" {
		var err error
		if c.cert, err = os.ReadFile(filepath.Clean(fields[1])); err != nil {
			tb.Fatal(err)
		}
	}
	for _, s := range strings.Split(fields[2], ",") {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			tb.Fatal(err)
		}
		c.ids = append(c.ids, id)
	}
	return c
}
