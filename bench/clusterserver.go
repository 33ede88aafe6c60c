package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nellis-edge/gateway/bench/loadgen"
	"github.com/nellis-edge/gateway/nellissim"
)

// clusterServer is a cluster scenario's server: one NATS process
// (bin/nellis-nats), the simulator in the driver, and spec.nodes gateway
// processes joined over NATS, each with its own storage and admin
// endpoint. Its CPU and memory are all of those processes' together.
type clusterServer struct {
	plainRun // starts as any run: its own shapePlan, windowBegins, measure below
	nats     *natsProc
	sim      *simulator
	nodes    []*gateway
	names    []string
	ids      []int64
	// killOwner: inject SIGKILLs the node owning the most products.
	killOwner bool
	// killed is the index of the node inject killed, -1 before;
	// killedCPU and killedRSS are its CPU and memory just before.
	killed              int
	killedCPU           time.Duration
	killedRSS, killPeak int64
	killedOwned         int
	// killedAt is when inject killed it, killedProducts what it owned.
	killedAt       time.Time
	killedProducts []int64
	// With killOwner: the lots the bidders snipe on (clusterbids.go),
	// the run's secret their tokens derive from, and their sockets.
	bidLots []int64
	secret  string
	bidders *bidders
	// natsCPU is the NATS process's CPU at each cpu call (runLoad's
	// window's start and end): its own share of the total.
	natsCPU []time.Duration

	// Of the run (shapePlan, windowBegins, measure): its clients, who
	// owned what when it was planned, the changes due after a kill, and
	// the streams sampled through the window.
	clients     int
	unowned     int
	ownedBefore map[string]int
	afterKill   int64
	sampled     chan streamSamples
}

// shapePlan tells the clients which deliveries cross nodes: ownership
// settles as the clients monitor, so it is read once they all have. A
// failover run's ownership changes at the kill, so it is not split.
func (c *clusterServer) shapePlan(p *loadgen.Plan) error {
	if !p.Mark.IsZero() {
		c.afterKill = p.Schedule.Count(p.Mark, p.MeasureUntil)
	}
	if c.killOwner {
		// The killed node's clients come back on the others and resume,
		// as the extension does.
		p.Reconnect, p.History = true, feedHistory
		return c.startBidders(p.Mark)
	}
	remote, unowned, err := c.remote()
	if err != nil {
		return err
	}
	p.Remote, c.unowned, c.ownedBefore = remote, unowned, c.ownedNow()
	return nil
}

// windowBegins samples the upstream streams per product every second of
// the window; the sampler ends with the window.
func (c *clusterServer) windowBegins(ctx context.Context, until time.Time) {
	c.sampled = make(chan streamSamples, 1)
	go func() { c.sampled <- c.sampleStreams(ctx, until) }()
}

// measure gathers the cluster's figures at the window's end.
func (c *clusterServer) measure(o *loadOutcome) error {
	o.cluster = c.outcome(<-c.sampled, c.clients)
	o.cluster.unowned, o.cluster.ownedBefore = c.unowned, c.ownedBefore
	if c.killOwner {
		o.cluster.afterKill = c.afterKill
		o.cluster.bids = c.bidsOutcome()
	}
	return nil
}

// startClusterServer starts NATS, the simulator and the nodes, and waits
// until every node answers.
func (b *bench) startClusterServer(ctx context.Context, spec loadSpec, dir string) (_ *clusterServer, err error) {
	c := &clusterServer{killOwner: spec.killOwner, killed: -1, clients: spec.clients, secret: b.token}
	defer func() {
		if err != nil {
			_ = c.stop()
		}
	}()
	if c.nats, err = startNATS(b.nats, dir); err != nil {
		return nil, err
	}
	if c.sim, err = startSimulator(); err != nil {
		return nil, err
	}
	if c.ids, err = c.sim.products(spec.products); err != nil {
		return nil, err
	}
	users := spec.userCount()
	if c.killOwner {
		if c.bidLots, err = bidLotsFrom(c.sim, c.ids, bidLotCount); err != nil {
			return nil, err
		}
		users += bidderCount // users u<clients>… are the bidders
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	for i := range spec.nodes {
		name := fmt.Sprintf("n%d", i+1)
		nodeDir := filepath.Join(dir, name)
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			return nil, err
		}
		gw, err := startGateway(ctx, b.caddy, nodeDir, gatewayOptions{simURL: c.sim.url, secret: b.token,
			users: users, socketsPerUser: spec.socketsPerUser(), admin: true, api: c.killOwner,
			nellisLines: []string{
				"cookie_key " + hex.EncodeToString(key),
				"cluster " + c.nats.url + " {",
				"\tnode " + name,
				"\tlease " + clusterLease.String(),
				"}",
			}})
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		c.nodes, c.names = append(c.nodes, gw), append(c.names, name)
	}
	return c, nil
}

// pid is the first node's: runLoad measures the cluster through cpu and
// mem, which take every process.
func (c *clusterServer) pid() int { return c.nodes[0].pid() }

// wsURL lists every node's endpoint: the load generator spreads its
// clients over them (loadgen.ClientURL), client i on node i mod n.
func (c *clusterServer) wsURL() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.wsURL()
	}
	return strings.Join(urls, ",")
}

func (c *clusterServer) products() []int64 { return c.ids }

func (c *clusterServer) play(ctx context.Context, sc nellissim.Schedule, opts nellissim.PlayOptions) (nellissim.PlayResult, error) {
	return c.sim.Play(ctx, sc, opts)
}

// profile saves a CPU profile of each node over d, at path with the
// node's name before the extension (cluster3-n1.pprof, …).
func (c *clusterServer) profile(d time.Duration, path string) error {
	ext := filepath.Ext(path)
	errs := make(chan error, len(c.nodes))
	for i, n := range c.nodes {
		go func() {
			errs <- n.profile(d, strings.TrimSuffix(path, ext)+"-"+c.names[i]+ext)
		}()
	}
	var all []error
	for range c.nodes {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// inject runs the scenario's fault: in cluster-failover, it SIGKILLs the
// node owning the most products, as a crash would, with no release.
func (c *clusterServer) inject(fault func(*simulator) error) error {
	if !c.killOwner {
		return fault(c.sim)
	}
	// The busiest is the node owning the most of the schedule's products,
	// the ones with traffic; the bid lots break a tie.
	busiest, bestScore := -1, -1
	var most []int64
	for i, n := range c.nodes {
		owned, err := ownedProducts(n)
		if err != nil {
			return fmt.Errorf("node %s: %w", c.names[i], err)
		}
		score := 0
		for _, id := range owned {
			if slices.Contains(c.ids, id) {
				score += 100
			} else {
				score++
			}
		}
		if score > bestScore {
			busiest, bestScore, most = i, score, owned
		}
	}
	victim := c.nodes[busiest]
	c.killedCPU, _ = procCPU(victim.pid())
	c.killedRSS, c.killPeak, _ = procMem(victim.pid())
	c.killedAt = time.Now()
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	c.killed, c.killedProducts = busiest, most
	for _, id := range most {
		if slices.Contains(c.ids, id) {
			c.killedOwned++ // of the schedule's products; the bid lots are told apart
		}
	}
	return nil
}

// cpu is every process's CPU so far: NATS, the live nodes, and a killed
// node's up to its kill.
func (c *clusterServer) cpu() (time.Duration, error) {
	total, err := procCPU(c.nats.cmd.Process.Pid)
	if err != nil {
		return 0, fmt.Errorf("nats: %w", err)
	}
	c.natsCPU = append(c.natsCPU, total)
	for i, n := range c.nodes {
		if i == c.killed {
			total += c.killedCPU
			continue
		}
		d, err := procCPU(n.pid())
		if err != nil {
			return 0, fmt.Errorf("node %s: %w", c.names[i], err)
		}
		total += d
	}
	return total, nil
}

// mem sums the processes' RSS and peaks (KiB).
func (c *clusterServer) mem() (rss, peak int64, err error) {
	pids := []int{c.nats.cmd.Process.Pid}
	for i, n := range c.nodes {
		if i == c.killed {
			rss, peak = rss+c.killedRSS, peak+c.killPeak
			continue
		}
		pids = append(pids, n.pid())
	}
	for _, pid := range pids {
		r, p, err := procMem(pid)
		if err != nil {
			return 0, 0, err
		}
		rss, peak = rss+r, peak+p
	}
	return rss, peak, nil
}

// stop stops the nodes (a graceful stop: each releases its products),
// then NATS, then the simulator.
func (c *clusterServer) stop() error {
	var errs []error
	c.bidders.stop()
	for i, n := range c.nodes {
		if i == c.killed {
			<-n.done
			continue
		}
		if err := n.stop(); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", c.names[i], err))
		}
	}
	if c.nats != nil {
		errs = append(errs, c.nats.stop())
	}
	if c.sim != nil {
		c.sim.close()
	}
	return errors.Join(errs...)
}

// streamSamples are the simulator's open upstream streams per product,
// read every second.
type streamSamples struct {
	n int // samples
	// most is the most streams one product had open at one sample;
	// doubled counts samples where some product had more than one,
	// missing those where some product had none.
	most, doubled, missing int
}

// sampleStreams reads every product's open streams each second until
// until.
func (c *clusterServer) sampleStreams(ctx context.Context, until time.Time) streamSamples {
	var s streamSamples
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return s
		case now := <-tick.C:
			if now.After(until) {
				return s
			}
		}
		s.n++
		doubled, missing := false, false
		for _, id := range c.ids {
			st, err := c.sim.Stats(id)
			if err != nil {
				continue
			}
			s.most = max(s.most, st.StreamsOpen)
			doubled = doubled || st.StreamsOpen > 1
			missing = missing || st.StreamsOpen == 0
		}
		if doubled {
			s.doubled++
		}
		if missing {
			s.missing++
		}
	}
}

// clusterOutcome is what a cluster scenario measured beyond a load
// scenario's figures.
type clusterOutcome struct {
	streams streamSamples
	// owned is each live node's owned products at the window's end.
	owned map[string]int
	// killed names the node cluster-failover killed and how many
	// products it owned; killedClients were its clients; afterKill is
	// how many scheduled events fell in the window from the kill on.
	killed        string
	killedOwned   int
	killedClients int
	afterKill     int64
	// natsCPU is the NATS process's CPU over the window, part of the
	// scenario's total.
	natsCPU time.Duration
	// unowned is how many products had no owner when the plan was made
	// (counted as cross-node for every client); ownedBefore is each
	// node's owned products then, to compare with owned at the end.
	unowned     int
	ownedBefore map[string]int
	// bids is what the simulator received of cluster-failover's bidders.
	bids *bidOutcome
}

// ownedNow is each live node's owned products (-1: not known).
func (c *clusterServer) ownedNow() map[string]int {
	owned := map[string]int{}
	for i, n := range c.nodes {
		if i == c.killed {
			continue
		}
		k, err := ownedFeeds(n)
		if err != nil {
			k = -1
		}
		owned[c.names[i]] = k
	}
	return owned
}

// outcome gathers the cluster's figures at the window's end.
func (c *clusterServer) outcome(s streamSamples, clients int) *clusterOutcome {
	o := &clusterOutcome{streams: s, owned: c.ownedNow()}
	if k := len(c.natsCPU); k >= 2 {
		o.natsCPU = c.natsCPU[k-1] - c.natsCPU[0]
	}
	if c.killed >= 0 {
		o.killed, o.killedOwned = c.names[c.killed], c.killedOwned
		for i := range clients { // client i dials node i mod n (loadgen.ClientURL)
			if i%len(c.nodes) == c.killed {
				o.killedClients++
			}
		}
	}
	return o
}

// ownedFeeds is how many products node n owns, from its /nellis/feeds.
func ownedFeeds(n *gateway) (int, error) {
	ids, err := ownedProducts(n)
	return len(ids), err
}

// ownedProducts are the products node n owns, from its /nellis/feeds.
func ownedProducts(n *gateway) ([]int64, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/nellis/feeds", n.adminPort))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/nellis/feeds: %s", resp.Status)
	}
	var report struct {
		Feeds []struct {
			ProductID int64  `json:"product_id"`
			Role      string `json:"role"`
		} `json:"feeds"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
		return nil, fmt.Errorf("/nellis/feeds: %w", err)
	}
	var owned []int64
	for _, f := range report.Feeds {
		if f.Role == "owner" {
			owned = append(owned, f.ProductID)
		}
	}
	return owned, nil
}

// remote is, per node endpoint, the products another node owns now
// (loadgen.Plan.Remote), and how many products no node owns.
func (c *clusterServer) remote() (map[string][]int64, int, error) {
	owner := map[int64]int{}
	for i, n := range c.nodes {
		ids, err := ownedProducts(n)
		if err != nil {
			return nil, 0, fmt.Errorf("node %s: %w", c.names[i], err)
		}
		for _, id := range ids {
			owner[id] = i
		}
	}
	out := map[string][]int64{}
	unowned := 0
	for _, id := range c.ids {
		o, owned := owner[id]
		if !owned {
			unowned++
		}
		for i, n := range c.nodes {
			if !owned || o != i {
				out[n.wsURL()] = append(out[n.wsURL()], id)
			}
		}
	}
	return out, unowned, nil
}

// natsProc is a running bin/nellis-nats with its store in the scenario's
// folder.
type natsProc struct {
	cmd  *exec.Cmd
	url  string
	log  string
	done chan error
}

func startNATS(bin, dir string) (*natsProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "nats.log")
	cmd := exec.Command(bin, "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-store", filepath.Join(dir, "nats"), "-quiet")
	done, err := startLogged(cmd, logPath)
	if err != nil {
		return nil, err
	}
	n := &natsProc{cmd: cmd, url: fmt.Sprintf("nats://127.0.0.1:%d", port), log: logPath, done: done}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "ready on") {
			return n, nil
		}
		select {
		case err := <-n.done:
			return nil, fmt.Errorf("nellis-nats exited (%v): %s", err, strings.TrimSpace(string(b)))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = n.stop()
			return nil, fmt.Errorf("nellis-nats not ready after 10s: %s", strings.TrimSpace(string(b)))
		}
	}
}

// stop asks NATS to shut down (SIGTERM) and kills it after 10 s.
func (n *natsProc) stop() error {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		if err != nil {
			return fmt.Errorf("nellis-nats: %w", err)
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
		return errors.New("nellis-nats did not stop within 10s; killed")
	}
}

// serverCPU is the CPU so far of what serves the clients: every process
// of a cluster, else the one process.
func serverCPU(srv server) (time.Duration, error) {
	if c, ok := srv.(*clusterServer); ok {
		return c.cpu()
	}
	return procCPU(srv.pid())
}

// serverMem is serverCPU's counterpart for RSS and peak RSS (KiB).
func serverMem(srv server) (rss, peak int64, err error) {
	if c, ok := srv.(*clusterServer); ok {
		return c.mem()
	}
	return procMem(srv.pid())
}
