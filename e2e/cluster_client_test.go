package e2e

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The cluster tests' clients: sockets speaking the extension's protocol
// to one node of the stack, each checking what it saw.

// lotView is what one client saw of a lot: the newest epoch, seq and
// price, and each seq's price in that epoch.
type lotView struct {
	epoch  string
	seq    uint64
	price  float64
	epochs int // distinct epochs seen
	prices map[uint64]float64
	close  time.Time // data.closeTime
}

// stackClient is a socket speaking the extension's protocol to one node.
// A goroutine reads every message; each auctionState is checked against
// what came before: a lower price, or a lower seq of the same epoch, is
// recorded in bad.
type stackClient struct {
	t    *testing.T
	node string
	conn *websocket.Conn

	mu sync.Mutex
	// extension: states at or below the newest seq of the epoch are
	// ignored, as the extension does, rather than counted as going back:
	// a resumed socket may get live states among the replayed ones.
	extension bool
	msgs      []map[string]any
	arrived   []time.Time // when each of msgs was read
	lots      map[int64]*lotView
	bad       []string
	more      chan struct{} // signalled after each message
	closed    chan struct{} // closed when the socket ended
}

// dial connects a client to node n and signs it in.
func (s *stack) dial(n *stackNode) *stackClient {
	s.t.Helper()
	return s.dialAs(n, stackToken)
}

// dialAs connects a client to node n and signs it in with token.
func (s *stack) dialAs(n *stackNode, token string) *stackClient {
	s.t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://localhost:%d/ws", n.port), nil)
	if err != nil {
		s.t.Fatalf("node %s: %v", n.name, err)
	}
	c := &stackClient{t: s.t, node: n.name, conn: conn, lots: map[int64]*lotView{},
		more: make(chan struct{}, 1), closed: make(chan struct{})}
	go c.read()
	s.t.Cleanup(func() {
		conn.Close()
		<-c.closed
	})
	c.send(map[string]any{"type": "authenticate", "token": token, "requestId": "auth"})
	if _, m := c.waitFor(0, 10*time.Second, "authenticated", func(m map[string]any) bool { return m["type"] == "authenticated" }); m["success"] != true {
		s.t.Fatalf("node %s: authenticate: %v", n.name, m)
	}
	return c
}

func (c *stackClient) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatalf("node %s: %v", c.node, err)
	}
}

func (c *stackClient) read() {
	defer close(c.closed)
	for {
		var m map[string]any
		if err := c.conn.ReadJSON(&m); err != nil {
			return
		}
		at := time.Now()
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.arrived = append(c.arrived, at)
		if m["type"] == "auctionState" {
			c.noteLocked(m)
		}
		c.mu.Unlock()
		select {
		case c.more <- struct{}{}:
		default:
		}
	}
}

// noteLocked checks an auctionState against what came before.
func (c *stackClient) noteLocked(m map[string]any) {
	a, _ := m["auction"].(map[string]any)
	id, err := strconv.ParseInt(fmt.Sprint(a["id"]), 10, 64)
	epoch, _ := a["epoch"].(string)
	seqF, okSeq := a["seq"].(float64)
	data, _ := a["data"].(map[string]any)
	price, okPrice := data["currentBid"].(float64)
	if err != nil || epoch == "" || !okSeq || !okPrice {
		return
	}
	seq := uint64(seqF)
	v := c.lots[id]
	if v == nil {
		v = &lotView{}
		c.lots[id] = v
	}
	if c.extension && epoch == v.epoch && seq <= v.seq {
		return
	}
	switch {
	case price < v.price:
		c.bad = append(c.bad, fmt.Sprintf("lot %d: price $%.0f after $%.0f", id, price, v.price))
	case epoch == v.epoch && seq < v.seq:
		c.bad = append(c.bad, fmt.Sprintf("lot %d: seq %d after %d", id, seq, v.seq))
	}
	if epoch != v.epoch {
		v.epoch, v.seq, v.prices = epoch, 0, map[uint64]float64{}
		v.epochs++
	}
	v.seq = max(v.seq, seq)
	v.price = max(v.price, price)
	v.prices[seq] = price
	if ct, ok := data["closeTime"].(string); ok {
		v.close, _ = time.Parse(time.RFC3339Nano, ct)
	}
}

// checkSameStory fails the test if two clients saw lot id, in one
// epoch, at different prices under one seq: each seq of the log is one
// change, whichever node delivered it.
func checkSameStory(t *testing.T, clients map[string]*stackClient, ids []int64) {
	t.Helper()
	for _, id := range ids {
		type seen struct {
			node  string
			price float64
		}
		first := map[string]seen{} // by epoch and seq
		for name, c := range clients {
			v := c.view(id)
			for seq, price := range v.prices {
				key := fmt.Sprintf("%s/%d", v.epoch, seq)
				if f, ok := first[key]; !ok {
					first[key] = seen{name, price}
				} else if f.price != price {
					t.Errorf("lot %d seq %s: $%.0f on node %s, $%.0f on node %s", id, key, f.price, f.node, price, name)
				}
			}
		}
	}
}

// asExtension makes the client ignore what the extension ignores (see
// stackClient.extension).
func (c *stackClient) asExtension() {
	c.mu.Lock()
	c.extension = true
	c.mu.Unlock()
}

// view is a copy of what the client saw of lot id.
func (c *stackClient) view(id int64) lotView {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.lots[id]
	if v == nil {
		return lotView{}
	}
	cp := *v
	cp.prices = make(map[uint64]float64, len(v.prices))
	for k, p := range v.prices {
		cp.prices[k] = p
	}
	return cp
}

// regressions is what the client saw go backwards.
func (c *stackClient) regressions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bad...)
}

// arrivedAt is when message i was read.
func (c *stackClient) arrivedAt(i int) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.arrived[i]
}

// mark is the index the next message will have.
func (c *stackClient) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// waitFor returns the first message from index from on that ok accepts,
// and its index, failing the test after within.
func (c *stackClient) waitFor(from int, within time.Duration, what string, ok func(map[string]any) bool) (int, map[string]any) {
	c.t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for ; from < len(c.msgs); from++ {
			if ok(c.msgs[from]) {
				m := c.msgs[from]
				c.mu.Unlock()
				return from, m
			}
		}
		c.mu.Unlock()
		select {
		case <-c.more:
		case <-c.closed:
			c.t.Fatalf("node %s: the socket ended while waiting for %s", c.node, what)
		case <-deadline.C:
			c.t.Fatalf("node %s: no %s within %v", c.node, what, within)
		}
	}
}

// waitPrice waits until the client saw lot id at price or above.
func (c *stackClient) waitPrice(id int64, price int, within time.Duration) {
	c.t.Helper()
	c.waitFor(0, within, fmt.Sprintf("lot %d at $%d", id, price), func(map[string]any) bool {
		return c.lots[id] != nil && c.lots[id].price >= float64(price)
	})
}

// monitor starts monitoring each lot with its config (nil: watch only)
// and waits for each lot's first state.
func (c *stackClient) monitor(configs map[int64]map[string]any) {
	c.t.Helper()
	for id, cfg := range configs {
		if cfg == nil {
			cfg = map[string]any{"maxBid": 1, "strategy": "auto", "incrementAmount": 1, "autoBid": false}
		}
		c.send(map[string]any{
			"type": "startMonitoring", "auctionId": fmt.Sprint(id), "requestId": fmt.Sprint("mon_", id),
			"config":   cfg,
			"metadata": map[string]any{"source": "e2e", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", id)},
		})
	}
	for id := range configs {
		c.waitFor(0, 10*time.Second, fmt.Sprintf("lot %d's first state", id), func(map[string]any) bool { return c.lots[id] != nil })
	}
}

// autoBidStatus waits for an autoBidState of lot id that ok accepts.
func (c *stackClient) autoBidState(from int, id int64, within time.Duration, what string, ok func(status, message string) bool) {
	c.t.Helper()
	c.waitFor(from, within, what, func(m map[string]any) bool {
		st, _ := m["state"].(map[string]any)
		status, _ := st["status"].(string)
		msg, _ := st["message"].(string)
		return m["type"] == "autoBidState" && m["auctionId"] == fmt.Sprint(id) && ok(status, msg)
	})
}
