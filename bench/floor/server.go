// Package floor is the benchmark's machine floor: a WebSocket fan-out
// server doing the least work any server could, so that each gateway figure
// in BENCHMARKS.md stands next to what this machine's loopback TCP allows
// at all. It speaks just enough of the extension's protocol for the load
// generator (bench/loadgen) to set its clients up, plays the benchmark's
// schedule itself (nellissim.Schedule) and writes each event, framed once,
// to every socket monitoring its product, on GOMAXPROCS goroutines: no JSON
// per client, no per-client queues, no metrics. cmd/nellis-floor runs it in
// a process of its own; the bench driver measures it as it does the gateway.
package floor

import (
	"encoding/json"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"
)

// Server accepts the load generator's clients. Its zero value is not
// usable; call New.
type Server struct {
	upgrader websocket.Upgrader
	shards   []*shard

	mu      sync.Mutex
	closed  bool
	next    int       // the shard the next client joins, round robin
	clients []*client // every client ever accepted, for Close
	readers sync.WaitGroup
}

// shard is the clients one fan-out goroutine writes to.
type shard struct {
	mu sync.Mutex
	// byProduct only ever grows: a client is appended, never removed or
	// replaced, so a slice read under mu stays valid to iterate after it is
	// released. A closed client stays listed, marked dead; the floor serves
	// one run per process.
	byProduct map[int64][]*client
}

// client is one accepted socket. Its reader reads through gorilla; every
// write (replies, pongs, events) goes straight to the net.Conn, under mu.
type client struct {
	ws *websocket.Conn
	nc net.Conn

	mu   sync.Mutex
	dead bool // a write failed or the socket closed: skip it
}

// New returns a server fanning out on GOMAXPROCS goroutines.
func New() *Server {
	s := &Server{upgrader: websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 1024, // only the handshake goes through gorilla's writer
		CheckOrigin:     func(*http.Request) bool { return true },
	}}
	for range runtime.GOMAXPROCS(0) {
		s.shards = append(s.shards, &shard{byProduct: map[int64][]*client{}})
	}
	return s
}

// ServeHTTP upgrades any request and reads the client until it closes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &client{ws: ws, nc: ws.NetConn()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close()
		return
	}
	sh := s.shards[s.next%len(s.shards)]
	s.next++
	s.clients = append(s.clients, c)
	s.readers.Add(1) // under mu, so never after Close's Wait began
	s.mu.Unlock()
	defer s.readers.Done()
	c.serve(sh)
}

// Close closes every client's socket and waits for their readers. The
// listener is the caller's (an http.Server does not track hijacked
// connections, so it cannot close these).
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	clients := s.clients
	s.mu.Unlock()
	for _, c := range clients {
		c.close()
	}
	s.readers.Wait()
}

// request is what the floor reads of a client message.
type request struct {
	Type      string          `json:"type"`
	AuctionID string          `json:"auctionId"`
	RequestID json.RawMessage `json:"requestId"`
}

// serve answers the client's setup requests until the socket ends.
func (c *client) serve(sh *shard) {
	defer c.close()
	// Gorilla's default handlers write through its own writer, which would
	// race with the raw writes; the load generator sends neither, but a
	// pong is cheap to get right and a close needs no answer.
	c.ws.SetPingHandler(func(data string) error {
		return c.write(appendFrame(nil, opPong, []byte(data)))
	})
	c.ws.SetCloseHandler(func(int, string) error { return nil })
	monitored := map[int64]bool{} // a product monitored twice is delivered once
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var req request
		if err := json.Unmarshal(data, &req); err != nil {
			continue
		}
		var reply []byte
		switch req.Type {
		case "authenticate": // any token: the floor has no users
			reply = replyFrame("authenticated", "", "", req.RequestID)
		case "startMonitoring":
			id, err := strconv.ParseInt(req.AuctionID, 10, 64)
			if err != nil {
				reply = errorFrame("auctionId must be a number", req.RequestID)
				break
			}
			if !monitored[id] {
				monitored[id] = true
				sh.add(id, c)
			}
			reply = replyFrame("response", "startMonitoring", req.AuctionID, req.RequestID)
		default:
			reply = errorFrame("the floor server does not do "+strconv.Quote(req.Type), req.RequestID)
		}
		if c.write(reply) != nil {
			return
		}
	}
}

// write sends one framed message; the first failure closes the socket.
func (c *client) write(frame []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return net.ErrClosed
	}
	_, err := c.nc.Write(frame)
	if err != nil {
		c.dead = true
		c.nc.Close()
	}
	return err
}

// close marks the client dead and closes its socket, which ends its reader
// and any write blocked on it.
func (c *client) close() {
	c.nc.Close() // first: a write blocked on it holds mu
	c.mu.Lock()
	c.dead = true
	c.mu.Unlock()
}

func (sh *shard) add(productID int64, c *client) {
	sh.mu.Lock()
	sh.byProduct[productID] = append(sh.byProduct[productID], c)
	sh.mu.Unlock()
}

func (sh *shard) monitoring(productID int64) []*client {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.byProduct[productID]
}
