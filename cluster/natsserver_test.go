package cluster

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsServer is an embedded NATS server with JetStream, for the tests: its
// store lives in the test's temporary directory, so a restart keeps the
// streams and buckets, and it listens on one port for its whole life.
type natsServer struct {
	t     testing.TB
	dir   string
	port  int
	s     *server.Server
	nodes atomic.Int32 // names handed out by node
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	n := &natsServer{t: t, dir: t.TempDir(), port: freePort(t)}
	n.start()
	t.Cleanup(n.stop)
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

func (n *natsServer) start() {
	n.t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      n.port,
		JetStream: true,
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

// stop shuts the server down and waits until it has; a second stop does
// nothing.
func (n *natsServer) stop() {
	if n.s == nil {
		return
	}
	n.s.Shutdown()
	n.s.WaitForShutdown()
	n.s = nil
}

// restart stops the server and starts it again on the same port and store.
func (n *natsServer) restart() {
	n.stop()
	n.start()
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// config is a valid config for a node of this server with a 1s lease.
func (n *natsServer) config(node string) Config {
	return Config{Servers: []string{n.url()}, Node: node, Lease: 1e9, History: 16}
}

// bus returns a connected bus for node, closed at the test's end.
func (n *natsServer) bus(node string) *JetStream {
	n.t.Helper()
	return n.busWith(n.config(node))
}

func (n *natsServer) busWith(cfg Config) *JetStream {
	n.t.Helper()
	b, err := New(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Connect(ctx); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = b.Close() })
	return b
}

// claim claims product for b, failing the test if it cannot.
func claim(t *testing.T, b *JetStream, product int64) *Lease {
	t.Helper()
	l, err := b.Claim(testCtx(t), product)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testCtx is a context for one test step.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
