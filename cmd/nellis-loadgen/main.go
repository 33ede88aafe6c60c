// Command nellis-loadgen is the benchmark's load generator: C WebSocket
// clients speaking the Chrome extension's protocol to a Nellis Edge
// gateway, in a process of its own so that its CPU is measured apart from
// the gateway's. The bench driver (go run ./bench, or make bench) starts it
// and exchanges one JSON line each way on stdin and stdout (see package
// bench/loadgen); it can also be driven by hand:
//
//	NELLIS_LOADGEN_SECRET=s nellis-loadgen -url ws://127.0.0.1:9080/ws -clients 1000 -products 1,2,3
//
// Client i authenticates with the token "s-<i>" (user u<i> in the bench
// Caddyfile); with -users 1 every client uses "s-0", the shared token. A
// wss:// URL is verified against the certificate given with -ca:
//
//	nellis-loadgen -url wss://127.0.0.1:9443/ws -ca cert.pem -clients 1000 -products 1
//
// Errors and progress go to stderr; stdout carries only the JSON lines.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/nellis-edge/gateway/bench/loadgen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "nellis-loadgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("nellis-loadgen", flag.ContinueOnError)
	var opt loadgen.Options
	var products string
	fs.StringVar(&opt.URL, "url", "ws://127.0.0.1:9080/ws", "the gateway's WebSocket endpoint, or several separated by commas (a cluster's nodes: the clients spread over them)")
	fs.IntVar(&opt.Clients, "clients", 10, "sockets to open")
	fs.IntVar(&opt.First, "first", 0, "the first client's user number")
	fs.StringVar(&products, "products", "", "comma-separated product ids each client monitors; empty: idle clients")
	fs.IntVar(&opt.Watch, "watch", 0, "products each client monitors, client i from position i×watch of -products on; 0: all of them")
	fs.IntVar(&opt.DialConcurrency, "dial-concurrency", 64, "clients set up at once")
	fs.IntVar(&opt.Users, "users", 0, "users the clients share: client i is user (first+i) mod users; 1 is one shared token; 0: one user each")
	fs.StringVar(&opt.CAFile, "ca", "", "PEM certificate file to trust for a wss:// URL (default: the system's roots)")
	secretEnv := fs.String("secret-env", "NELLIS_LOADGEN_SECRET", "environment variable holding the run's secret: client i's token is <secret>-<first+i> (kept off the command line)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	opt.Secret = os.Getenv(*secretEnv)
	if opt.Secret == "" {
		return fmt.Errorf("no secret: set %s", *secretEnv)
	}
	if opt.First < 0 {
		return fmt.Errorf("-first must not be negative, got %d", opt.First)
	}
	if opt.Users < 0 {
		return fmt.Errorf("-users must not be negative, got %d", opt.Users)
	}
	ids, err := parseProducts(products)
	if err != nil {
		return err
	}
	opt.Products = ids
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return loadgen.Run(ctx, opt, os.Stdin, os.Stdout)
}

// parseProducts reads "1,2,3"; empty means none.
func parseProducts(s string) ([]int64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ids []int64
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("-products: %q is not a product id", f)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, errors.New("-products: no ids")
	}
	return ids, nil
}
