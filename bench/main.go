// Command bench is the benchmark driver behind `make bench`: for each
// scenario it starts the simulator (in this process), a fresh gateway
// (bin/caddy, its own process) and the load generators
// (bin/nellis-loadgen, their own processes), measures, stops them, and
// finally writes the figures into BENCHMARKS.md between its markers,
// leaving the hand-written analysis around them alone.
//
//	go run ./bench -caddy bin/caddy -loadgen bin/nellis-loadgen -floor bin/nellis-floor
//
// The delivery scenarios c10, c1k, c10k and 100k also run as floor-c10 …
// floor-100k against the machine floor (bin/nellis-floor, package
// bench/floor), a minimal fan-out server, with the same clients; each of
// these also runs over TLS (tls-c10, floor-tls-c10, …, tlsspecs.go), as do
// the idle connections (idle-tls, floor-idle, floor-idle-tls). The
// shared-token scenarios (sharedspecs.go) put 10,000 clients under one
// user. The cluster scenarios (clusterspecs.go) serve c1k's load from three
// gateway processes joined over one NATS process (bin/nellis-nats):
// cluster3, and cluster-failover, which SIGKILLs the busiest owner.
//
// BENCH_QUICK=1 (or -quick) is a smoke run of several minutes that prints
// the table and writes nothing; BENCH_HOLD (or -hold) sets how long the
// idle connections are held (default 10m, quick 10s).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nellis-edge/gateway/bench/benchcert"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is one run of the driver.
type bench struct {
	caddy   string
	loadgen string
	floor   string // the machine floor's binary
	nats    string // bin/nellis-nats, for the cluster scenarios
	dir     string // scratch, removed at the end
	token   string // the run's secret, from which the users' tokens derive
	// profileDir, when set, receives a CPU profile of the gateway over
	// each load scenario's window (-profile).
	profileDir string
	// tls is the run's certificate (bench/benchcert), for the TLS
	// scenarios.
	tls benchcert.Files
}

// tlsFor is the run's certificate when on, else nil (plain ws://).
func (b *bench) tlsFor(on bool) *benchcert.Files {
	if !on {
		return nil
	}
	return &b.tls
}

func run(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	caddy := fs.String("caddy", "bin/caddy", "the gateway binary (make build)")
	lg := fs.String("loadgen", "bin/nellis-loadgen", "the load generator binary")
	floorBin := fs.String("floor", "bin/nellis-floor", "the machine floor's binary (floor-* scenarios)")
	natsBin := fs.String("nats", "bin/nellis-nats", "the NATS server's binary (cluster scenarios, make nats)")
	quick := fs.Bool("quick", os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0", "a short smoke run (env BENCH_QUICK=1)")
	out := fs.String("out", "", "file to write the figures into (default BENCHMARKS.md; none when quick or profiling)")
	holdFlag := fs.Duration("hold", 0, "how long idle connections are held (env BENCH_HOLD; default 10m, quick 10s)")
	only := fs.String("only", "", "comma-separated scenario keys to run (default all)")
	profile := fs.String("profile", "", "directory for gateway CPU profiles of each load scenario's window (turns the admin endpoint on)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	hold := *holdFlag
	if hold == 0 {
		if env := os.Getenv("BENCH_HOLD"); env != "" {
			d, err := time.ParseDuration(env)
			if err != nil || d <= 0 {
				return fmt.Errorf("BENCH_HOLD: want a duration such as 10m, got %q", env)
			}
			hold = d
		}
	}
	if hold == 0 {
		hold = 10 * time.Minute
		if *quick {
			hold = 10 * time.Second
		}
	}
	outPath := *out
	if outPath == "" && !*quick && *profile == "" {
		outPath = "BENCHMARKS.md"
	}
	for _, bin := range []string{*caddy, *lg} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%w (run make build, or make bench)", err)
		}
	}
	dir, err := os.MkdirTemp("", "nellis-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	b := &bench{caddy: *caddy, loadgen: *lg, floor: *floorBin, nats: *natsBin, dir: dir, token: hex.EncodeToString(secret), profileDir: *profile}
	if b.tls, err = benchcert.Write(dir); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	rep := &report{quick: *quick, hold: hold, args: os.Args, began: began.UTC()}
	keys := strings.Split(*only, ",")
	want := func(key string) bool { return *only == "" || slices.Contains(keys, key) }
	specs := withCluster(withTLS(withFloor(withShared(append(loadSpecs(*quick), lotsSpecs(*quick)...)))), *quick)
	for _, spec := range specs {
		if spec.floor && want(spec.key) {
			if err := floorBinary(b.floor); err != nil {
				return err
			}
			break
		}
	}
	for _, spec := range specs {
		if spec.nodes > 0 && want(spec.key) {
			if _, err := os.Stat(b.nats); err != nil {
				return fmt.Errorf("%w (the cluster scenarios need it: make nats)", err)
			}
			break
		}
	}
	for _, spec := range specs {
		if !want(spec.key) {
			continue
		}
		quiet := waitQuiet(ctx, quietLimit(*quick))
		logf("%s: %d clients, %g events/s over %d products, %s window (machine busy %.0f%% of a core before)",
			spec.label(), spec.clients, spec.rate, spec.products, spec.window, 100*quiet)
		o, err := b.runLoad(ctx, spec)
		o.busyBefore = quiet
		if err != nil {
			return fmt.Errorf("%s: %w", spec.label(), err)
		}
		logf("%s: p50 %.2f p99 %.2f max %.2f ms, %.0f deliveries/s, %d drops, %d duplicates, %d restated, server %.3f ms CPU/1k",
			spec.label(), o.res.Latency.P50, o.res.Latency.P99, o.res.Latency.Max, o.res.DeliveriesPerSec,
			o.res.Drops, o.res.Duplicates, o.res.Restates, o.gwCPUPer1k())
		if spec.lots != nil {
			logLots(o)
		}
		if o.cluster != nil {
			logCluster(o)
		}
		rep.loads = append(rep.loads, o)
	}
	var idle []idleTarget
	for _, t := range idleTargets {
		if want(t.key) {
			idle = append(idle, t)
		}
	}
	if len(idle) > 0 {
		if slices.ContainsFunc(idle, func(t idleTarget) bool { return t.floor }) {
			if err := floorBinary(b.floor); err != nil {
				return err
			}
		}
		n := 19_000
		if *quick {
			n = 2_000
		}
		quiet := waitQuiet(ctx, quietLimit(*quick))
		logf("idle: %d connections to each of %d servers, held %s (machine busy %.0f%% of a core before)", n, len(idle), hold, 100*quiet)
		outs, err := b.runIdle(ctx, idle, n, 5*time.Second, hold)
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		for _, o := range outs {
			logf("idle: %s: %.2f KiB per connection, %d/%d open at the end", o.target.name, o.perConnKiB(), o.open, o.conns)
		}
		rep.setIdle(outs)
	}
	rep.took = time.Since(began)
	text := rep.markdown()
	fmt.Print(text)
	if outPath == "" || outPath == os.DevNull { // -out /dev/null: printed only
		return nil
	}
	return writeSection(outPath, text)
}

// quietLimit is how long a scenario waits for a quiet machine.
func quietLimit(quick bool) time.Duration {
	if quick {
		return 5 * time.Second
	}
	return 30 * time.Second
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}
