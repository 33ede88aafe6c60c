package wsrelay

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestHeartbeatAndPing(t *testing.T) {
	cfg := testConfig()
	cfg.HeartbeatInterval = 20 * time.Millisecond
	cfg.PingInterval = 300 * time.Millisecond
	f := newFixture(t, cfg, Options{})
	c := f.connect()
	pinged := make(chan struct{})
	var once sync.Once
	c.ws.SetPingHandler(func(data string) error {
		once.Do(func() { close(pinged) })
		return c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ws.ReadMessage() // pings are handled while reading
	if err != nil || !strings.HasPrefix(string(data), `{"type":"heartbeat","ts":`) {
		t.Fatalf("got %s, %v; want a heartbeat", data, err)
	}
	for {
		select {
		case <-pinged:
			return
		default:
		}
		if _, _, err := c.ws.ReadMessage(); err != nil {
			t.Fatalf("no ping before %v", err)
		}
	}
}
