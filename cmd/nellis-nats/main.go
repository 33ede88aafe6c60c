// Command nellis-nats is a single NATS server with JetStream, for trying
// cluster mode on one machine (`make demo-cluster`) and for the
// benchmark's cluster rows. It is nats-server itself, embedded, with the
// two settings cluster mode needs: where to listen and where JetStream
// keeps its store. Production runs a real NATS cluster (docs/operations.md,
// "Running NATS for cluster mode").
//
//	nellis-nats -listen 127.0.0.1:4222 -store /var/tmp/nellis-nats
//
// SIGINT or SIGTERM stops it cleanly: clients are told, the store is
// flushed, and it exits 0.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	// Signals are this command's, not the server's (NoSigs): the server
	// would otherwise exit the process from its own goroutine.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	if err := run(os.Args[1:], os.Stderr, sigs); err != nil {
		fmt.Fprintln(os.Stderr, "nellis-nats:", err)
		os.Exit(1)
	}
}

// run serves until a signal arrives on sigs, then shuts the server down
// and waits until it has.
func run(args []string, stderr io.Writer, sigs <-chan os.Signal) error {
	fs := flag.NewFlagSet("nellis-nats", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4222", "host:port for NATS clients")
	store := fs.String("store", "", "JetStream's store directory (required: streams and buckets live there)")
	quiet := fs.Bool("quiet", false, "log nothing but errors that stop the server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	opts, err := options(*listen, *store)
	if err != nil {
		return err
	}
	opts.NoLog = *quiet
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	if !*quiet {
		s.ConfigureLogger()
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return errors.New("not ready for connections within 10s (is " + *listen + " in use?)")
	}
	fmt.Fprintf(stderr, "nellis-nats: ready on nats://%s, JetStream store %s\n", *listen, *store)
	select {
	case sig := <-sigs:
		fmt.Fprintf(stderr, "nellis-nats: %s, shutting down\n", sig)
	case <-waitShutdown(s):
		return errors.New("the server stopped by itself")
	}
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}

// options are the server's settings for a listen address and a store.
func options(listen, store string) (*server.Options, error) {
	if store == "" {
		return nil, errors.New("-store is required")
	}
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("-listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("-listen %q: the port must be 1 to 65535", listen)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return &server.Options{
		ServerName: "nellis-nats",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   store,
		NoSigs:     true,
	}, nil
}

// waitShutdown is closed when s has shut down on its own.
func waitShutdown(s *server.Server) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		s.WaitForShutdown()
		close(done)
	}()
	return done
}
