// Command nellis-floor is the benchmark's machine floor: a minimal
// WebSocket fan-out server (package bench/floor) that the bench driver
// measures with the same load generator as the gateway, so BENCHMARKS.md
// can show the least any server could do on this machine. It listens on a
// loopback port, says where on stdout, and plays each schedule the driver
// sends on stdin (one JSON line each way); stdin's end or a signal stops it.
// With -cert and -key it serves wss:// (Go's crypto/tls), the floor beside
// the gateway's TLS figures.
//
//	nellis-floor -listen 127.0.0.1:0 [-cert cert.pem -key key.pem]
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nellis-edge/gateway/bench/floor"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "nellis-floor:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("nellis-floor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port, reported on stdout)")
	certFile := fs.String("cert", "", "PEM certificate: serve wss:// (with -key)")
	keyFile := fs.String("key", "", "PEM private key of -cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	tlsConf, err := serverTLS(*certFile, *keyFile)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return floor.Run(ctx, *listen, tlsConf, os.Stdin, os.Stdout)
}

// serverTLS loads -cert and -key; neither means plain ws://.
func serverTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("-cert and -key go together")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("-cert/-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}
