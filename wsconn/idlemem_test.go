package wsconn

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/internal/childproc"
)

// BenchmarkIdleConnMemory and BenchmarkIdleConnMemoryTLS report the memory
// the transport holds per idle socket, over plain TCP and over TLS
// terminated in this process by crypto/tls (as Caddy does): heap and
// stacks of this process, the TLS server's per-connection state included,
// while the clients run in a child process so that their memory is not
// counted. Each measures once; run one at a time (-bench 'IdleConnMemory$'
// or 'IdleConnMemoryTLS') so no earlier benchmark's freed memory is reused.
func BenchmarkIdleConnMemory(b *testing.B)    { idleConnMemory(b, false) }
func BenchmarkIdleConnMemoryTLS(b *testing.B) { idleConnMemory(b, true) }

const idleSockets = 1000

func idleConnMemory(b *testing.B, overTLS bool) {
	f := newFixtureTLS(b, Limits{QueueSize: 16, WriteTimeout: 2 * time.Second, PingInterval: time.Minute}, overTLS)
	mem0 := childproc.MemInUse()
	child := childproc.StartWork(b, "idle-clients", f.wsURL(), idleSockets)
	socks := f.waitSockets(idleSockets)
	want := 0
	if f.tr.Polling() {
		want = idleSockets
	}
	waitFor(b, "the sockets to settle", func() bool {
		n := 0
		for _, s := range socks {
			if s.Parked() {
				n++
			}
		}
		return n >= want
	})
	time.Sleep(100 * time.Millisecond) // parked or not, every reader is waiting
	mem1 := childproc.MemInUse()
	for b.Loop() {
		// The measurement above is the benchmark.
	}
	n := 0
	for _, s := range socks {
		if s.Parked() {
			n++
		}
	}
	childproc.ReportPerConn(b, mem0, mem1, idleSockets)
	b.ReportMetric(float64(n)/idleSockets, "parked/conn")
	if err := child.Stop(); err != nil {
		b.Fatal(err)
	}
}

// runIdleClients is the child process of idleConnMemory: it opens the
// sockets (over TLS for a wss:// URL, trusting any certificate: the
// server's is the test's own), says ready, and holds them until its stdin
// closes.
func runIdleClients(url string, n int) int {
	dialer := &websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	// One message each, as an extension's authenticate: the server's
	// reader has read through the TLS layer once after the upgrade.
	return childproc.HoldSockets(dialer, url, n, func(ws *websocket.Conn) error {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		return nil
	})
}

func (f *fixture) wsURL() string {
	if strings.HasPrefix(f.srv.URL, "https") {
		return "wss" + strings.TrimPrefix(f.srv.URL, "https")
	}
	return "ws" + strings.TrimPrefix(f.srv.URL, "http")
}
