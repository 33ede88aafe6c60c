// Package natstest runs an embedded NATS server with JetStream for tests:
// the cluster package's and the hub's. Only test files import it, so the
// gateway binary never links nats-server.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an embedded NATS server whose store lives in the test's
// temporary directory and which listens on one port for its whole life,
// so a Restart keeps the streams and buckets and clients reconnect to it.
type Server struct {
	t    testing.TB
	dir  string
	port int
	core bool // JetStream off
	s    *server.Server
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	n := &Server{t: t, dir: t.TempDir(), port: freePort(t)}
	n.start()
	t.Cleanup(n.Stop)
	return n
}

// StartCore runs a server without JetStream until the test ends: a
// client connected to it stays connected while every JetStream call
// fails, as on a NATS server cut off from its cluster's quorum.
func StartCore(t testing.TB) *Server {
	t.Helper()
	n := &Server{t: t, dir: t.TempDir(), port: freePort(t), core: true}
	n.start()
	t.Cleanup(n.Stop)
	return n
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (n *Server) start() {
	n.t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      n.port,
		JetStream: !n.core,
		StoreDir:  n.dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		n.t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		n.t.Fatal("the embedded NATS server did not start")
	}
	n.s = s
}

// Stop shuts the server down and waits until it has; a second Stop does
// nothing.
func (n *Server) Stop() {
	if n.s == nil {
		return
	}
	n.s.Shutdown()
	n.s.WaitForShutdown()
	n.s = nil
}

// Restart stops the server and starts it again on the same port and store.
func (n *Server) Restart() {
	n.Stop()
	n.start()
}

// URL is the server's client URL.
func (n *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }
