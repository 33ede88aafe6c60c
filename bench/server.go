package main

import (
	"context"
	"errors"
	"time"

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
}

// gatewayServer is the gateway under test and the simulator it follows;
// the simulator plays the schedule from the driver's process.
type gatewayServer struct {
	*gateway
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
