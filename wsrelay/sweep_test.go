package wsrelay

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/settings"
)

func TestHeartbeatAndPing(t *testing.T) {
	cfg := testConfig()
	cfg.HeartbeatInterval = settings.Duration(20 * time.Millisecond)
	cfg.PingInterval = settings.Duration(300 * time.Millisecond)
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

// TestHeartbeatOnlyToQuietSockets: a socket that receives prices more
// often than the heartbeat interval needs no heartbeat and gets none; a
// quiet one gets one about every interval.
func TestHeartbeatOnlyToQuietSockets(t *testing.T) {
	cfg := testConfig()
	cfg.HeartbeatInterval = settings.Duration(80 * time.Millisecond)
	f := newFixture(t, cfg, Options{})
	busy, quiet := f.login(tokenAlice), f.login(tokenBob)
	startMonitoring(busy, "5", 100)
	const changes = 25 // one every 20 ms: 500 ms, six heartbeat intervals
	for seq := uint64(1); seq <= changes; seq++ {
		f.feeds.publish(newChange(t, product(5, float64(seq)), "e", seq))
		time.Sleep(20 * time.Millisecond)
	}
	count := func(c *client, until func(data string) bool) (beats int) {
		for {
			_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, data, err := c.ws.ReadMessage()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if strings.HasPrefix(string(data), `{"type":"heartbeat"`) {
				beats++
			}
			if until(string(data)) {
				return beats
			}
		}
	}
	last := `"currentBid":` + strconv.Itoa(changes) + `,`
	if n := count(busy, func(d string) bool { return strings.Contains(d, last) }); n != 0 {
		t.Errorf("a socket receiving a price every 20 ms got %d heartbeats", n)
	}
	// 500 ms of quiet, checked every quarter interval, a heartbeat due
	// after three quarters: one every 60 to 80 ms, six to eight in all.
	quiet.send(map[string]any{"type": "ping"})
	if n := count(quiet, func(d string) bool { return strings.HasPrefix(d, `{"type":"pong"`) }); n < 5 || n > 9 {
		t.Errorf("a quiet socket got %d heartbeats in 500 ms with an 80 ms interval", n)
	}
}
