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
