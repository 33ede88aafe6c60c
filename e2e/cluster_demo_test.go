package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/internal/natstest"
)

// The cluster demo's ports, moved off `make demo-cluster`'s own and used
// by no other test.
const (
	clusterSimPort   = 9284
	clusterFirstPort = 9281 // nodes a, b, c: 9281-9283
	clusterFirstAdm  = 2991 // their admin endpoints: 2991-2993
)

var clusterSimURL = fmt.Sprintf("http://127.0.0.1:%d", clusterSimPort)

// clusterDemoFile is one of the cluster demo's Caddyfiles with the
// simulator's port moved and the page served from the repository.
func clusterDemoFile(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	pages, err := filepath.Abs(filepath.Join("..", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(raw), ":9081", fmt.Sprintf(":%d", clusterSimPort))
	return strings.Replace(cfg, "root * demo", "root * "+pages, 1)
}

// clusterProcess runs `caddy run` on cfg with env added, as
// demo/cluster.sh does, until the test ends.
func clusterProcess(t *testing.T, cfg string, env ...string) *caddyProcess {
	t.Helper()
	dir := t.TempDir()
	return runCaddyProcess(t, dir, cfg, append(env, "DEMO_DIR="+dir)...)
}

// clusterNode is one gateway of the demo and a client of it that
// monitors every open lot, keeping the highest price it saw of each.
type clusterNode struct {
	name string
	port int
	proc *caddyProcess

	mu   sync.Mutex
	best map[int64]float64 // the highest price pushed, per lot
	// fell describes the first price pushed below one seen before.
	fell string
}

// get is the body of the node's page path.
func (n *clusterNode) get(t *testing.T, path string) string {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://localhost:%d%s", n.port, path))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// reached is how many lots have been pushed at least their price in want,
// and the first fall of a price, if any.
func (n *clusterNode) reached(want map[int64]float64) (int, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for id, price := range want {
		if n.best[id] >= price {
			k++
		}
	}
	return k, n.fell
}

// TestClusterDemoSurvivesAKilledNode runs `make demo-cluster`'s
// Caddyfiles as its processes: NATS, the simulator and three gateways. A
// client on each node watches every lot; the node owning the most lots is
// SIGKILLed, and the clients of the other two still see every lot's new
// price, one upstream stream per lot, then stop cleanly on SIGTERM.
func TestClusterDemoSurvivesAKilledNode(t *testing.T) {
	nats := natstest.Start(t)
	natsPort := nats.URL()[strings.LastIndexByte(nats.URL(), ':')+1:]
	clusterProcess(t, clusterDemoFile(t, "Caddyfile.demo-sim"))
	node := clusterDemoFile(t, "Caddyfile.demo-cluster")
	var nodes []*clusterNode
	for i, name := range []string{"a", "b", "c"} {
		n := &clusterNode{name: name, port: clusterFirstPort + i, best: map[int64]float64{}}
		n.proc = clusterProcess(t, node, "NODE="+name, fmt.Sprintf("PORT=%d", n.port),
			fmt.Sprintf("ADMIN_PORT=%d", clusterFirstAdm+i), "NATS_PORT="+natsPort)
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		waitUntil(t, 30*time.Second, "node "+n.name+" to answer", func() bool {
			select {
			case <-n.proc.exited:
				t.Fatalf("node %s exited (%v; are ports %d-%d, %d-%d or %d in use?)", n.name, n.proc.err,
					clusterFirstPort, clusterFirstPort+2, clusterFirstAdm, clusterFirstAdm+2, clusterSimPort)
			default:
			}
			res, err := http.Get(fmt.Sprintf("http://localhost:%d/health", n.port))
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
		if got := n.get(t, "/_node"); got != n.name {
			t.Fatalf("node %s's page names it %q", n.name, got)
		}
	}

	lots := openLots(t)
	for _, n := range nodes {
		n.watch(t, lots)
	}
	waitUntil(t, 15*time.Second, "one upstream stream per lot", func() bool {
		for id := range lots {
			if open, _ := clusterLotStreams(t, id); open != 1 {
				return false
			}
		}
		return true
	})

	victim := nodes[0]
	most := -1
	for _, n := range nodes {
		if owned := ownedLots(t, clusterFirstAdm+(n.port-clusterFirstPort)); owned > most {
			victim, most = n, owned
		}
	}
	if most == 0 {
		t.Fatal("no node owns a lot")
	}
	if err := victim.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.proc.exited
	t.Logf("killed node %s, owner of %d of %d lots", victim.name, most, len(lots))

	// A rival outbids on every lot; each survivor must see every new
	// price within the lease (3s) and a few seconds more, never two
	// streams of a lot, and never a lower price than one it saw.
	want := map[int64]float64{}
	for id, price := range lots {
		simulateBid(t, clusterSimURL, id, price+500)
		want[id] = float64(price + 500)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		if n == victim {
			continue
		}
		for {
			k, fell := n.reached(want)
			if fell != "" {
				t.Fatalf("node %s: %s", n.name, fell)
			}
			if k == len(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: 10 s after the kill, the new price of %d of %d lots", n.name, k, len(want))
			}
			for id := range lots {
				if open, _ := clusterLotStreams(t, id); open > 1 {
					t.Fatalf("lot %d has %d upstream streams", id, open)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// A newcomer's view: a surviving node's page names it and shows the
	// new prices.
	var survivor *clusterNode
	for _, n := range nodes {
		if n != victim {
			survivor = n
			break
		}
	}
	ctx := newBrowser(t)
	step, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var lowest float64
	for _, price := range want {
		if lowest == 0 || price < lowest {
			lowest = price
		}
	}
	const newPrices = `Array.from(document.querySelectorAll(".lot .price")).filter(e => Number(e.textContent.replace(/[$,]/g, "")) >= %d).length`
	err := chromedp.Do(step,
		chromedp.Navigate(fmt.Sprintf("http://localhost:%d/", survivor.port)),
		chromedp.WaitVisible(`.conn[data-state="live"]`),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("node").textContent === "node %s" && !document.getElementById("node").hidden`, survivor.name)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(newPrices+" >= %d", int(lowest), len(want))),
	)
	if err != nil {
		screenshot(t, ctx, "cluster-demo-failed")
		t.Fatalf("node %s's page never named it and showed the %d new prices: %v", survivor.name, len(want), err)
	}
	screenshot(t, ctx, "cluster-demo")

	for _, n := range nodes {
		if n == victim {
			continue
		}
		if err := n.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if n == victim {
			continue
		}
		select {
		case <-n.proc.exited:
			if n.proc.err != nil {
				t.Errorf("node %s exited with %v", n.name, n.proc.err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("node %s still running 10 s after SIGTERM", n.name)
		}
	}
}

// openLots are the simulator's open lots and their prices.
func openLots(t *testing.T) map[int64]int {
	t.Helper()
	open := map[int64]int{}
	for _, l := range simOpenLots(t, clusterSimURL) {
		open[l.ID] = l.CurrentBid
	}
	return open
}

// watch signs in with the demo's token on node n, monitors every lot and
// keeps the highest price pushed of each until the socket ends.
func (n *clusterNode) watch(t *testing.T, lots map[int64]int) {
	t.Helper()
	origin := fmt.Sprintf("http://localhost:%d", n.port)
	conn, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://localhost:%d/ws", n.port), http.Header{"Origin": {origin}})
	if err != nil {
		t.Fatalf("node %s: %v", n.name, err)
	}
	c := &demoClient{t: t, conn: conn}
	c.send(map[string]any{"type": "authenticate", "token": "demo-token", "requestId": "req_1"})
	if m := c.next("authenticated", 10*time.Second, nil); m["success"] != true {
		t.Fatalf("node %s: authenticate: %v", n.name, m)
	}
	for id := range lots {
		c.send(map[string]any{
			"type": "startMonitoring", "auctionId": fmt.Sprint(id), "requestId": fmt.Sprint("req_", id),
			"config":   map[string]any{"maxBid": 5, "strategy": "sniping", "incrementAmount": 1, "autoBid": false},
			"metadata": map[string]any{"source": "e2e", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", id)},
		})
	}
	_ = conn.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var m map[string]any
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			a, _ := m["auction"].(map[string]any)
			data, _ := a["data"].(map[string]any)
			bid, ok := data["currentBid"].(float64)
			id, err := strconv.ParseInt(fmt.Sprint(a["id"]), 10, 64)
			if m["type"] != "auctionState" || !ok || err != nil {
				continue
			}
			n.mu.Lock()
			if bid < n.best[id] && n.fell == "" {
				n.fell = fmt.Sprintf("lot %d went from $%.0f down to $%.0f", id, n.best[id], bid)
			}
			n.best[id] = max(n.best[id], bid)
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
}

// clusterLotStreams is the demo simulator's count of streams for lot id.
func clusterLotStreams(t *testing.T, id int64) (open int, opened int64) {
	t.Helper()
	return simLotStreams(t, clusterSimURL, id)
}

// ownedLots is how many lots the node with admin port adm owns.
func ownedLots(t *testing.T, adm int) int {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://localhost:%d/nellis/feeds", adm))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var report struct {
		Feeds []struct {
			Role string `json:"role"`
		} `json:"feeds"`
	}
	if err := json.NewDecoder(res.Body).Decode(&report); err != nil {
		t.Fatal(err)
	}
	owned := 0
	for _, f := range report.Feeds {
		if f.Role == "owner" {
			owned++
		}
	}
	return owned
}
