package main

import (
	"context"
	"errors"
	"time"

	"github.com/nellis-edge/gateway/bench/loadgen"
	"github.com/nellis-edge/gateway/nellissim"
)

// server is what serves the load generator's clients in a load scenario
// and plays the schedule to them: the gateway following the simulator, or
// the machine floor (floorproc.go). runLoad measures either the same way.
type server interface {
	// pid is the process whose CPU and memory are the server's.
	pid() int
	wsURL() string
	// products are the ids the schedule may bid on.
	products() []int64
	// play emits the schedule until opts.Until, in the caller's goroutine.
	play(ctx context.Context, sc nellissim.Schedule, opts nellissim.PlayOptions) (nellissim.PlayResult, error)
	// inject runs a scenario's fault.
	inject(fault func(*simulator) error) error
	// profile saves a CPU profile of the server over d to path.
	profile(d time.Duration, path string) error
	stop() error
	shaper
}

// shaper is what a scenario's server decides of a run beyond serving it.
// Most serve the schedule as it comes (plainRun); a night of lots
// (lotsServer) fixes when it starts and tells the clients when each lot
// closes; a cluster (clusterServer) tells them which deliveries cross
// nodes and samples the upstream streams through the window.
type shaper interface {
	// loadgenFlags are more of the load generator's command line.
	loadgenFlags() []string
	// scheduleStart is when the schedule begins, given the usual start
	// soon after the clients are ready; an error when they were not ready
	// in time for a start fixed in advance.
	scheduleStart(soon time.Time) (time.Time, error)
	// shapePlan adds what the clients must know to the plan, which has
	// its schedule, window and mark; the clients are ready.
	shapePlan(*loadgen.Plan) error
	// windowBegins starts what the server samples through the window
	// (which ends at until, or with ctx); measure collects it.
	windowBegins(ctx context.Context, until time.Time)
	// measure adds the server's own figures at the window's end.
	measure(*loadOutcome) error
}

// plainRun is the shaper of a run that needs nothing more.
type plainRun struct{}

func (plainRun) loadgenFlags() []string                          { return nil }
func (plainRun) scheduleStart(soon time.Time) (time.Time, error) { return soon, nil }
func (plainRun) shapePlan(*loadgen.Plan) error                   { return nil }
func (plainRun) windowBegins(context.Context, time.Time)         {}
func (plainRun) measure(*loadOutcome) error                      { return nil }

// gatewayServer is the gateway under test and the simulator it follows;
// the simulator plays the schedule from the driver's process.
type gatewayServer struct {
	*gateway
	plainRun
	sim *simulator
	ids []int64
}

// startGatewayServer starts a simulator and a gateway following it.
func (b *bench) startGatewayServer(ctx context.Context, spec loadSpec, dir string) (*gatewayServer, error) {
	sim, err := startSimulator()
	if err != nil {
		return nil, err
	}
	ids, err := sim.products(spec.products)
	if err != nil {
		sim.close()
		return nil, err
	}
	gw, err := startGateway(ctx, b.caddy, dir, gatewayOptions{simURL: sim.url, secret: b.token, users: spec.userCount(), socketsPerUser: spec.socketsPerUser(),
		admin: b.profileDir != "", tls: b.tlsFor(spec.tls)})
	if err != nil {
		sim.close()
		return nil, err
	}
	return &gatewayServer{gateway: gw, sim: sim, ids: ids}, nil
}

func (g *gatewayServer) products() []int64 { return g.ids }

func (g *gatewayServer) play(ctx context.Context, sc nellissim.Schedule, opts nellissim.PlayOptions) (nellissim.PlayResult, error) {
	return g.sim.Play(ctx, sc, opts)
}

func (g *gatewayServer) inject(fault func(*simulator) error) error { return fault(g.sim) }

// stop stops the gateway first, then the simulator it follows.
func (g *gatewayServer) stop() error {
	err := g.gateway.stop()
	g.sim.close()
	return err
}

// errNoUpstream refuses a fault scenario on the floor, which follows no
// Nellis.
var errNoUpstream = errors.New("the floor server has no upstream to fail")
