package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/internal/natstest"
	"github.com/nellis-edge/gateway/nellissim"
)

// The cluster tests' ports, used by no other test: three gateways and
// their admin endpoints. The simulator and NATS listen on free ports.
const (
	stackFirstPort  = 9381 // nodes a, b, c: 9381-9383
	stackFirstAdmin = 2981 // their admin endpoints: 2981-2983
	stackToken      = "cluster-stack-token-0123456789"
	stackCookieKey  = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	// stackJWTKey signs the tokens of users no `user` line names.
	stackJWTKey = "cluster-stack-hmac-key-long-enough-for-hs256"
	// stackBidder is the Nellis user the gateways bid as: the simulator
	// reads it from the synced cookie.
	stackBidder = "alice"
)

// stack is three gateway processes (this test binary as Caddy) in cluster
// mode over one embedded NATS server, following an in-process simulator.
type stack struct {
	t     *testing.T
	lease time.Duration
	sim   *nellissim.Simulator
	nats  *natstest.Server
	nodes []*stackNode

	// bidsArrived counts the bid requests that reached the simulator,
	// counted as they arrive: with a bid delay (SetBidDelay) a bid is
	// held there for a while after.
	bidsArrived atomic.Int64

	// streams is the simulator's stream counts, sampled until the test
	// ends (sampleStreams).
	streamsMu sync.Mutex
	maxOpen   map[int64]int // the most streams of a product at one sample
	tolerate  atomic.Int32  // streams per product allowed for now (0: one)
}

// stackNode is one gateway of the stack.
type stackNode struct {
	name         string
	port, admin  int
	proxy        *natstest.Proxy // between the node and NATS; nil: direct
	dir, cfgText string
	proc         *caddyProcess
	// frozen while the process is stopped (stack.stall): it answers
	// nothing, so the rig asks it nothing.
	frozen atomic.Bool
}

// newStack starts the simulator with lots lots, NATS, and three gateways
// with the given lease, each through a TCP proxy to NATS when proxied, and
// returns once every gateway answers.
func newStack(t *testing.T, lease time.Duration, lots int, proxied bool) *stack {
	t.Helper()
	// A soft close of 2 s: a rival announcing a close 9 s away leaves it
	// there, and so does a sniper bidding 3 s before it.
	sim := nellissim.New(nellissim.Config{Seed: 15, Auctions: lots, AuctionLength: 30 * time.Minute, ExtensionInterval: 2})
	s := &stack{t: t, lease: lease, sim: sim, maxOpen: map[int64]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/bids" {
			s.bidsArrived.Add(1)
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close) // before the server's Close, which waits on open streams
	sim.Start()
	s.nats = natstest.Start(t)
	for i, name := range []string{"a", "b", "c"} {
		n := &stackNode{name: name, port: stackFirstPort + i, admin: stackFirstAdmin + i, dir: t.TempDir()}
		natsURL := s.nats.URL()
		if proxied {
			n.proxy = s.nats.NewProxy()
			natsURL = n.proxy.URL()
		}
		n.cfgText = n.config(srv.URL, natsURL, lease)
		n.proc = runCaddyProcess(t, n.dir, n.cfgText)
		s.nodes = append(s.nodes, n)
	}
	for _, n := range s.nodes {
		waitUntil(t, 30*time.Second, "node "+n.name+" to answer", func() bool {
			select {
			case <-n.proc.exited:
				t.Fatalf("node %s exited (%v; are ports %d-%d or %d-%d in use?)", n.name, n.proc.err,
					stackFirstPort, stackFirstPort+2, stackFirstAdmin, stackFirstAdmin+2)
			default:
			}
			status, _ := n.ready()
			return status == http.StatusOK
		})
	}
	s.sampleStreams()
	return s
}

// config is the node's Caddyfile.
func (n *stackNode) config(simURL, natsURL string, lease time.Duration) string {
	return fmt.Sprintf(`{
	admin localhost:%d
	persist_config off
	storage file_system %s
	nellis {
		sse_endpoint %s
		api_endpoint %s
		auth_token %s
		poll_rate 50
		cookie_key %s
		jwt {
			hmac_key %s
		}
		cluster %s {
			node %s
			lease %s
		}
	}
}

http://localhost:%d {
	bind 127.0.0.1
	nellis_ws /ws
	nellis_api /api/*
}
`, n.admin, n.dir, simURL, simURL, stackToken, stackCookieKey, stackJWTKey, natsURL, n.name, lease, n.port)
}

// running reports whether the node's process has not exited and is
// not frozen.
func (n *stackNode) running() bool {
	if n.frozen.Load() {
		return false
	}
	select {
	case <-n.proc.exited:
		return false
	default:
		return true
	}
}

// adminClient asks the nodes' admin endpoints: bounded, so that a node
// that never answers (a frozen one) fails the test rather than hang it.
var adminClient = &http.Client{Timeout: 10 * time.Second}

// adminGet decodes the node's admin endpoint path into v and returns the
// status.
func (n *stackNode) adminGet(path string, v any) (int, error) {
	res, err := adminClient.Get(fmt.Sprintf("http://localhost:%d%s", n.admin, path))
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	return res.StatusCode, json.NewDecoder(res.Body).Decode(v)
}

// ready is the node's readiness: the status and the reason.
func (n *stackNode) ready() (int, string) {
	var v struct {
		Reason string `json:"reason"`
	}
	status, err := n.adminGet("/nellis/health/ready", &v)
	if err != nil {
		return 0, err.Error()
	}
	return status, v.Reason
}

// metric is the sum of node n's series on its admin /metrics whose
// line starts with series (a name, or a name and the start of its
// labels: `nellis_cluster_appends_total{result="ok"`); 0 when none.
func (s *stack) metric(n *stackNode, series string) float64 {
	s.t.Helper()
	res, err := adminClient.Get(fmt.Sprintf("http://localhost:%d/metrics", n.admin))
	if err != nil {
		s.t.Fatalf("node %s: metrics: %v", n.name, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatalf("node %s: metrics: %v", n.name, err)
	}
	var sum float64
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, series) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			s.t.Fatalf("node %s: metrics line %q: %v", n.name, line, err)
		}
		sum += v
	}
	return sum
}

// stackFeed is one feed of /nellis/feeds.
type stackFeed struct {
	ProductID int64  `json:"product_id"`
	Role      string `json:"role"`
	Owner     string `json:"owner"`
	Epoch     string `json:"epoch"`
	Seq       uint64 `json:"seq"`
}

// feeds is the node's feeds; none when it does not answer.
func (n *stackNode) feeds() []stackFeed {
	var report struct {
		Feeds []stackFeed `json:"feeds"`
	}
	if _, err := n.adminGet("/nellis/feeds", &report); err != nil {
		return nil
	}
	return report.Feeds
}

// owners is which running node says it owns each product; a product two
// nodes say they own is in twice.
func (s *stack) owners() (map[int64]string, []string) {
	owned := map[int64]string{}
	var twice []string
	for _, n := range s.nodes {
		if !n.running() {
			continue
		}
		for _, f := range n.feeds() {
			if f.Role != "owner" {
				continue
			}
			if other, ok := owned[f.ProductID]; ok {
				twice = append(twice, fmt.Sprintf("product %d owned by %s and %s", f.ProductID, other, n.name))
			}
			owned[f.ProductID] = n.name
		}
	}
	return owned, twice
}

// node is the node named name.
func (s *stack) node(name string) *stackNode {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	s.t.Fatalf("no node %s", name)
	return nil
}

// lots are the simulator's lot ids, in its order.
func (s *stack) lots() []int64 {
	var ids []int64
	for _, a := range s.sim.Auctions() {
		ids = append(ids, a.ID)
	}
	return ids
}

// lot is the simulator's lot id now.
func (s *stack) lot(id int64) nellissim.Auction {
	for _, a := range s.sim.Auctions() {
		if a.ID == id {
			return a
		}
	}
	s.t.Fatalf("no lot %d", id)
	return nellissim.Auction{}
}

// outbid makes a rival raise lot id's price by one dollar: a bidder other
// than the leader, so the price moves. It returns the new price.
func (s *stack) outbid(id int64) int {
	s.t.Helper()
	var err error
	// Another bid (the rivals', an auto-bid) may take the price first.
	for range 5 {
		a := s.lot(id)
		rival := "rival-a"
		if a.Leader == rival {
			rival = "rival-b"
		}
		if err = s.sim.EmitBid(id, a.NextBid, rival); err == nil {
			return a.NextBid
		}
	}
	s.t.Fatalf("rival bid on %d: %v", id, err)
	return 0
}

// rivals outbids on ids in turn, one every period, while the switch it
// returns is on (it starts on), until the test ends.
func (s *stack) rivals(ids []int64, period time.Duration) *atomic.Bool {
	on := new(atomic.Bool)
	on.Store(true)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if on.Load() {
				a := ids[i%len(ids)]
				i++
				if l := s.lot(a); !l.IsClosed {
					rival := "rival-a"
					if l.Leader == rival {
						rival = "rival-b"
					}
					_ = s.sim.EmitBid(a, l.NextBid, rival)
				}
			}
		}
	}()
	s.t.Cleanup(func() {
		close(stop)
		<-done
	})
	return on
}

// clientsBut are the clients of every node but n.
func (s *stack) clientsBut(clients map[string]*stackClient, n *stackNode) []*stackClient {
	var out []*stackClient
	for _, m := range s.nodes {
		if m != n {
			out = append(out, clients[m.name])
		}
	}
	return out
}

// sampleStreams reads every lot's open streams at the simulator every 50
// ms until the test ends, keeping the most seen at once per product while
// strict (tolerate 0).
func (s *stack) sampleStreams() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if s.tolerate.Load() != 0 {
				continue
			}
			for _, id := range s.lots() {
				st, err := s.sim.Stats(id)
				if err != nil {
					continue
				}
				s.streamsMu.Lock()
				s.maxOpen[id] = max(s.maxOpen[id], st.StreamsOpen)
				s.streamsMu.Unlock()
			}
		}
	}()
	s.t.Cleanup(func() {
		close(stop)
		<-done
	})
}

// checkStreams fails the test if any product had more than one upstream
// stream at a strict sample so far.
func (s *stack) checkStreams() {
	s.t.Helper()
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	for id, n := range s.maxOpen {
		if n > 1 {
			s.t.Errorf("product %d had %d upstream streams at once", id, n)
		}
	}
}

// oneStreamEach waits until every product in ids has exactly one open
// upstream stream and returns how long that took.
func (s *stack) oneStreamEach(ids []int64, within time.Duration, what string) time.Duration {
	s.t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		all := true
		for _, id := range ids {
			if st, _ := s.sim.Stats(id); st.StreamsOpen != 1 {
				all = false
			}
		}
		if all {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			var counts []string
			for _, id := range ids {
				st, _ := s.sim.Stats(id)
				counts = append(counts, fmt.Sprintf("%d: %d", id, st.StreamsOpen))
			}
			s.t.Fatalf("%s: not one stream per product within %v (%s)", what, within, strings.Join(counts, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncCookies syncs the bidder's Nellis cookies through node n, as the
// extension does; cluster mode shares them with the other nodes.
func (s *stack) syncCookies(n *stackNode) {
	s.t.Helper()
	s.syncCookiesAs(n, stackToken, stackBidder)
}

// syncCookiesAs syncs, through node n, the cookies of the user token
// names: those of simUser at the simulator.
func (s *stack) syncCookiesAs(n *stackNode, token, simUser string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/api/auth", n.port),
		strings.NewReader(`{"cookies":"sim_user=`+simUser+`"}`))
	req.Header.Set("Authorization", token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		s.t.Fatalf("cookie sync on %s: %s", n.name, res.Status)
	}
}

// userBids are the bidder's bid requests to lot id at the simulator.
func (s *stack) userBids(id int64) []nellissim.BidRequest {
	s.t.Helper()
	return s.bidsOf(id, stackBidder)
}

// bidsOf are simUser's bid requests to lot id at the simulator.
func (s *stack) bidsOf(id int64, simUser string) []nellissim.BidRequest {
	s.t.Helper()
	var mine []nellissim.BidRequest
	for _, b := range s.sim.BidRequests(id) {
		if b.User == simUser {
			mine = append(mine, b)
		}
	}
	return mine
}

// checkNoRepeatedBid fails the test if the bidder sent one amount twice
// on lot id.
func (s *stack) checkNoRepeatedBid(id int64) {
	s.t.Helper()
	s.checkNoRepeatedBidOf(id, stackBidder)
}

// checkNoRepeatedBidOf fails the test if simUser sent one amount twice on
// lot id.
func (s *stack) checkNoRepeatedBidOf(id int64, simUser string) {
	s.t.Helper()
	seen := map[int]int{}
	for _, b := range s.bidsOf(id, simUser) {
		seen[b.Amount]++
		if seen[b.Amount] == 2 {
			s.t.Errorf("lot %d: $%d bid twice by %s at the simulator (%+v)", id, b.Amount, simUser, s.bidsOf(id, simUser))
		}
	}
}

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
