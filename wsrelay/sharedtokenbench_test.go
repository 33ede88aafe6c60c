package wsrelay

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/internal/childproc"
)

// BenchmarkSharedTokenSetup times N sockets of one user (the old
// backend's shared token) signing in, one after the other, and each
// starting to monitor the same auction, as extensions do on connect; an
// op is the whole setup. With a sign-in costing the same whatever the
// number of sockets already open, ns/socket stays flat from 1,000 to
// 10,000. The clients run in a child process, so the two sides' file
// descriptors fit the limit of one process each.
func BenchmarkSharedTokenSetup(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			f := newFixture(b, sharedTokenConfig(n), Options{})
			for range b.N {
				child := childproc.StartWork(b, "shared-setup", f.wsURL(), n)
				b.StopTimer()
				if err := child.Stop(); err != nil {
					b.Fatal(err)
				}
				for deadline := time.Now().Add(time.Minute); f.relay.Stats().Connections > 0; time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						b.Fatal("the sockets did not close")
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/socket")
		})
	}
}

// runSharedSetup is the child process of BenchmarkSharedTokenSetup: it
// opens the sockets one after the other, each signing in as alice and
// starting to monitor auction 100, says ready, and holds them until its
// stdin closes.
func runSharedSetup(url string, n int) int {
	// until reads ws's messages up to one of type typ.
	until := func(ws *websocket.Conn, typ string) error {
		for {
			_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, data, err := ws.ReadMessage()
			if err != nil {
				return err
			}
			var m struct{ Type string }
			if json.Unmarshal(data, &m) == nil && m.Type == typ {
				return nil
			}
		}
	}
	start := `{"type":"startMonitoring","auctionId":"100","requestId":"s","config":{"maxBid":45,"autoBid":true},"metadata":{"title":"lot 100","url":"https://www.nellisauction.com/p/x/100"}}`
	dialer := &websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024}
	return childproc.HoldSockets(dialer, url, n, func(ws *websocket.Conn) error {
		for _, step := range []func() error{
			func() error { return until(ws, "connected") },
			func() error {
				return ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"authenticate","token":"`+tokenAlice+`","requestId":"a"}`))
			},
			func() error { return until(ws, "authenticated") },
			func() error { return ws.WriteMessage(websocket.TextMessage, []byte(start)) },
			func() error { return until(ws, "response") },
			func() error { return until(ws, "auctionState") },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
}
