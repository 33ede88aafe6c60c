package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nellis-edge/gateway/nellissim"
)

// lotsPlan makes a load scenario an auction night (issue 16): thousands
// of lots, each client watching a few, lots closing one after another over
// the run, the simulator offering h2 over TLS.
type lotsPlan struct {
	watch int // lots each client monitors
	// setup is the time from the simulator's start to the schedule's,
	// within which the clients connect and monitor. The close times are
	// fixed when the simulator starts, as a night's are before anyone
	// watches, so the schedule cannot wait for a slow setup.
	setup time.Duration
	// The first lot closes firstClose after the window opens, the others
	// every gap after it, in an order spread over the lots.
	firstClose, gap time.Duration
	nellis          []string // the scenario's settings of the nellis block
}

// lastWindow is a lot's closing stretch measured apart: every change in it
// must arrive.
const lastWindow = 60 * time.Second

// lotsSpecs are issue 16's rows: 5,000 lots with 2,000 clients watching 50
// each (20 watchers a lot), 1,000 streams allowed, 100 bids/s over all
// lots (one a lot every 50 s), a tenth of the lots closing inside the
// window and the rest over the following minutes.
func lotsSpecs(quick bool) []loadSpec {
	const lots, closingInWindow = 5_000, 500
	window, firstClose := 60*time.Second, 20*time.Second
	if quick {
		window, firstClose = 20*time.Second, 5*time.Second
	}
	plan := lotsPlan{
		// Setting up took 18 s with other work on the machine.
		watch: 50, setup: 40 * time.Second,
		firstClose: firstClose, gap: (window - firstClose) / closingInWindow,
		// A client restoring 50 monitored lots sends 51 messages at once,
		// as the extension does on every reconnect: over the default
		// burst of 40 the last would be refused.
		nellis: []string{"max_streams 1000", "message_burst 64"},
	}
	base := loadSpec{key: "lots", name: "5,000 lots, 2,000 clients × 50 lots, 1,000 streams", clients: 2_000, products: lots,
		rate: 100, warmup: 5 * time.Second, window: window, drain: 5 * time.Second, lots: &plan}
	canary := base
	canaryPlan := plan
	canaryPlan.nellis = append([]string{"use_sse 5%"}, plan.nellis...)
	canary.key, canary.name, canary.lots = "lots-sse5", base.name+", use_sse 5%", &canaryPlan
	return []loadSpec{base, canary}
}

// lotsServer is the gateway following a simulator of a night's lots.
type lotsServer struct {
	*gatewayServer
	start  time.Time // when the schedule's first event is due
	closes map[int64]time.Time
}

// startLotsServer starts the simulator of spec's night over TLS, fixes its
// close times, and a gateway trusting its certificate.
func (b *bench) startLotsServer(ctx context.Context, spec loadSpec, dir string) (*lotsServer, error) {
	sim, err := serveSimulator(nellissim.Config{
		Seed: 1, Auctions: spec.products, AuctionLength: 24 * time.Hour,
		// A bid in a lot's last second moves its close by one: the close
		// times the clients are told stay right within a second.
		ExtensionInterval: 1,
	}, nellissim.ServeOptions{TLS: true})
	if err != nil {
		return nil, err
	}
	lp := spec.lots
	s := &lotsServer{start: time.Now().Add(lp.setup).Truncate(time.Millisecond)}
	auctions := sim.Auctions()
	ids := make([]int64, len(auctions))
	for j, a := range auctions {
		ids[j] = a.ID
	}
	s.closes = closeTimes(ids, s.start.Add(spec.warmup), *lp)
	for id, at := range s.closes {
		if err := sim.SetCloseTime(id, at); err != nil {
			sim.close()
			return nil, err
		}
	}
	ca := filepath.Join(dir, "simulator-ca.pem")
	if err := os.WriteFile(ca, sim.srv.CertPEM, 0o600); err != nil {
		sim.close()
		return nil, err
	}
	lines := append([]string{"upstream_ca " + ca}, lp.nellis...)
	gw, err := startGateway(ctx, b.caddy, dir, gatewayOptions{simURL: sim.url, secret: b.token, users: spec.userCount(),
		socketsPerUser: spec.socketsPerUser(), admin: b.profileDir != "", nellisLines: lines})
	if err != nil {
		sim.close()
		return nil, err
	}
	s.gatewayServer = &gatewayServer{gateway: gw, sim: sim, ids: ids}
	return s, nil
}

// closeTimes staggers the lots' closes: the first firstClose after the
// window opens, then one every gap. The order is a stride through ids
// (7919 is prime, so j ↦ 7919j mod n visits every lot): the lots one
// client watches, neighbours in id order, close far apart.
func closeTimes(ids []int64, opens time.Time, lp lotsPlan) map[int64]time.Time {
	n := len(ids)
	closes := make(map[int64]time.Time, n)
	for j, id := range ids {
		rank := (j * 7919) % n
		closes[id] = opens.Add(lp.firstClose + time.Duration(rank)*lp.gap)
	}
	return closes
}

// checkSetup fails a night whose clients were not ready before its
// schedule began.
func (s *lotsServer) checkSetup(spec loadSpec) error {
	if left := time.Until(s.start); left < 500*time.Millisecond {
		return fmt.Errorf("the clients took longer than the scenario's %s to set up", spec.lots.setup)
	}
	return nil
}
