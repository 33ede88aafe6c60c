package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/tokens"
)

// converge is the bound: a user's change made on one node is on
// every node within it.
const converge = 250 * time.Millisecond

// TestClusterUserStateConverges (group 6): one user, with a socket on
// each node, monitors a lot on node A, changes its auto-bid config on
// node B and syncs cookies on node C: each change reaches every node's
// sockets of the user (the cookies: every node's /api/status) within 250
// ms. Then A and B change different fields of the lot's config at the
// same moment: every node ends with both. Another user, monitoring the
// same lot on every node (so that each node follows it before), gets none
// of it.
func TestClusterUserStateConverges(t *testing.T) {
	s := newStack(t, 2*time.Second, 2, false)
	lot := s.lots()[0]
	a, b, c := s.nodes[0], s.nodes[1], s.nodes[2]
	alice := map[string]*stackClient{}
	for _, n := range s.nodes {
		alice[n.name] = s.dial(n)
	}
	bobToken, err := tokens.Mint(tokens.Config{HMACKey: stackJWTKey}, "bob", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bob := map[string]*stackClient{}
	for _, n := range s.nodes {
		bob[n.name] = s.dialAs(n, bobToken)
	}
	// Bob monitors the lot, so every node follows it before alice's
	// changes: what is timed is her state's crossing, not a feed joining.
	bobConfig := map[string]any{"maxBid": 7, "strategy": "auto", "incrementAmount": 1, "autoBid": false}
	for _, n := range s.nodes {
		bob[n.name].monitor(map[int64]map[string]any{lot: bobConfig})
	}
	s.oneStreamEach([]int64{lot}, 10*time.Second, "the lot monitored")

	// sent on one node; then every node's sockets of alice show it.
	everywhere := func(what string, send func(), shows func(cfg map[string]any) bool) {
		t.Helper()
		from := map[string]int{}
		for name, cl := range alice {
			from[name] = cl.mark()
		}
		sent := time.Now()
		send()
		var took []string
		for _, n := range s.nodes {
			cl := alice[n.name]
			i, _ := cl.waitFor(from[n.name], 5*time.Second, what, func(m map[string]any) bool {
				return m["type"] == "auctionState" && shows(auctionConfig(m, lot))
			})
			d := cl.arrivedAt(i).Sub(sent)
			took = append(took, fmt.Sprintf("%s %v", n.name, d.Round(100*time.Microsecond)))
			if d > converge {
				t.Errorf("%s: on node %s after %v, want within %v", what, n.name, d, converge)
			}
		}
		t.Logf("%s: on every node's socket after %v", what, took)
	}

	everywhere("monitor on "+a.name, func() {
		alice[a.name].send(map[string]any{"type": "startMonitoring", "auctionId": fmt.Sprint(lot), "requestId": "mon",
			"config":   map[string]any{"maxBid": 11, "strategy": "auto", "incrementAmount": 1, "autoBid": false},
			"metadata": map[string]any{"source": "e2e", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", lot)}})
	}, func(cfg map[string]any) bool { return cfg["maxBid"] == 11.0 })

	everywhere("config on "+b.name, func() {
		alice[b.name].send(map[string]any{"type": "updateConfig", "auctionId": fmt.Sprint(lot), "requestId": "cfg",
			"config": map[string]any{"maxBid": 22}})
	}, func(cfg map[string]any) bool { return cfg["maxBid"] == 22.0 })

	// Cookies show in no socket message: each node's /api/status says
	// whether it holds the user's.
	for _, n := range s.nodes {
		if s.status(n, stackToken).CookiesSynced {
			t.Fatalf("node %s: cookies synced before any sync", n.name)
		}
	}
	sent := time.Now()
	s.syncCookies(c)
	seen := map[string]time.Duration{}
	for len(seen) < len(s.nodes) {
		for _, n := range s.nodes {
			if _, ok := seen[n.name]; !ok && s.status(n, stackToken).CookiesSynced {
				seen[n.name] = time.Since(sent)
			}
		}
		if time.Since(sent) > 5*time.Second {
			t.Fatalf("cookies synced on %s: on nodes %v only after 5 s", c.name, seen)
		}
		time.Sleep(2 * time.Millisecond)
	}
	var took []string
	for _, n := range s.nodes {
		d := seen[n.name]
		took = append(took, fmt.Sprintf("%s %v", n.name, d.Round(100*time.Microsecond)))
		if d > converge {
			t.Errorf("cookies synced on %s: on node %s after %v (status polled), want within %v", c.name, n.name, d, converge)
		}
	}
	t.Logf("cookies synced on %s: on every node's /api/status after %v (polled; at most)", c.name, took)

	// A and B change different fields of the lot's config at once.
	from := map[string]int{}
	for name, cl := range alice {
		from[name] = cl.mark()
	}
	var wg sync.WaitGroup
	at := make(chan struct{})
	for _, edit := range []struct {
		n   *stackNode
		cfg map[string]any
	}{{a, map[string]any{"incrementAmount": 3}}, {b, map[string]any{"strategy": "sniping", "snipeSeconds": 5}}} {
		wg.Go(func() {
			<-at
			alice[edit.n.name].send(map[string]any{"type": "updateConfig", "auctionId": fmt.Sprint(lot), "requestId": "at-once", "config": edit.cfg})
		})
	}
	sent = time.Now()
	close(at)
	wg.Wait()
	both := func(cfg map[string]any) bool {
		return cfg["maxBid"] == 22.0 && cfg["incrementAmount"] == 3.0 && cfg["strategy"] == "sniping" && cfg["snipeSeconds"] == 5.0
	}
	took = nil
	for _, n := range s.nodes {
		cl := alice[n.name]
		var last map[string]any
		deadline := time.Now().Add(5 * time.Second)
		for i := from[n.name]; ; {
			if i == cl.mark() {
				if time.Now().After(deadline) {
					t.Fatalf("node %s: alice's config %v 5 s after two edits at once, want both", n.name, last)
				}
				time.Sleep(5 * time.Millisecond)
				continue
			}
			cl.mu.Lock()
			m := cl.msgs[i]
			cl.mu.Unlock()
			i++
			if cfg := auctionConfig(m, lot); m["type"] == "auctionState" && cfg != nil {
				last = cfg
				if both(cfg) {
					took = append(took, fmt.Sprintf("%s %v", n.name, cl.arrivedAt(i-1).Sub(sent).Round(100*time.Microsecond)))
					break
				}
			}
		}
	}
	t.Logf("two edits at once: both on every node's socket after %v", took)
	// And they stay: each node's REST view, once everything settled.
	time.Sleep(time.Second)
	for _, n := range s.nodes {
		if cfg := s.auctionsConfig(n, stackToken, lot); !both(cfg) {
			t.Errorf("node %s: alice's config %v after two edits at once, want both", n.name, cfg)
		}
	}

	// Bob saw none of it: every state he got carries his config, and
	// no node holds cookies of his.
	for name, cl := range bob {
		cl.mu.Lock()
		for _, m := range cl.msgs {
			switch m["type"] {
			case "autoBidState":
				t.Errorf("bob's socket on %s got %v", name, m)
			case "auctionState":
				if cfg := auctionConfig(m, lot); cfg != nil && cfg["maxBid"] != 7.0 {
					t.Errorf("bob's socket on %s got config %v", name, cfg)
				}
			}
		}
		cl.mu.Unlock()
		n := s.node(name)
		if st := s.status(n, bobToken); st.CookiesSynced {
			t.Errorf("node %s: bob has cookies synced", name)
		}
		if cfg := s.auctionsConfig(n, bobToken, lot); cfg["maxBid"] != 7.0 || cfg["strategy"] != "auto" || cfg["incrementAmount"] != 1.0 {
			t.Errorf("node %s: bob's config %v, want his own", name, cfg)
		}
	}
}

// auctionConfig is the config of lot id in an auctionState message; nil
// for another lot.
func auctionConfig(m map[string]any, id int64) map[string]any {
	a, _ := m["auction"].(map[string]any)
	if a == nil || a["id"] != fmt.Sprint(id) {
		return nil
	}
	cfg, _ := a["config"].(map[string]any)
	return cfg
}

// userStatus is what GET /api/status says of a user.
type userStatus struct {
	CookiesSynced bool `json:"cookiesSynced"`
}

// apiGet decodes GET path on node n's API, signed in with token, into v.
func (s *stack) apiGet(n *stackNode, token, path string, v any) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://localhost:%d%s", n.port, path), nil)
	req.Header.Set("Authorization", token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s on node %s: %s", path, n.name, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		s.t.Fatalf("GET %s on node %s: %v", path, n.name, err)
	}
}

// status is node n's GET /api/status for the user of token.
func (s *stack) status(n *stackNode, token string) userStatus {
	s.t.Helper()
	var st userStatus
	s.apiGet(n, token, "/api/status", &st)
	return st
}

// auctionsConfig is the config node n's GET /api/auctions shows for lot
// id of the user of token; nil when it lists no such auction.
func (s *stack) auctionsConfig(n *stackNode, token string, id int64) map[string]any {
	s.t.Helper()
	var list struct {
		Auctions []map[string]any `json:"auctions"`
	}
	s.apiGet(n, token, "/api/auctions", &list)
	for _, a := range list.Auctions {
		if a["id"] == fmt.Sprint(id) {
			cfg, _ := a["config"].(map[string]any)
			return cfg
		}
	}
	return nil
}
