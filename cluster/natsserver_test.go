package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/natstest"
)

// natsServer is an embedded NATS server with JetStream (natstest) that
// hands out connected buses.
type natsServer struct {
	*natstest.Server
	t testing.TB
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	return &natsServer{Server: natstest.Start(t), t: t}
}

func (n *natsServer) restart()    { n.Restart() }
func (n *natsServer) stop()       { n.Stop() }
func (n *natsServer) url() string { return n.URL() }

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
