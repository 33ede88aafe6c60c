package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nellis-edge/gateway/bench/loadgen"
)

// perProcess keeps each load generator under the open-files limit of
// 20,000 per process, with room for its other files.
const perProcess = 9_500

// idleTarget is one server holding idle sockets in the idle run.
type idleTarget struct {
	key   string // for -only
	name  string // in the report
	floor bool   // the machine floor instead of the gateway
	tls   bool   // wss:// with the run's certificate
}

// idleTargets are the idle run's servers, set up one after another and
// then held together: each is its own process, so each RSS is its own,
// and one hold of every target costs the run a single 10 minutes. Two
// servers in one process could not hold 38,000 sockets under the
// open-files limit anyway.
var idleTargets = []idleTarget{
	{key: "idle", name: "gateway"},
	{key: "idle-tls", name: "gateway, TLS", tls: true},
	{key: "floor-idle", name: "machine floor", floor: true},
	{key: "floor-idle-tls", name: "machine floor, TLS", floor: true, tls: true},
}

// idleOutcome is the idle-connection memory run of one target.
type idleOutcome struct {
	target     idleTarget
	conns      int           // connected
	wanted     int           // asked for
	baseRSS    int64         // KiB before any client
	loadedRSS  int64         // KiB with every client connected and settled
	endRSS     int64         // KiB at the end of the hold
	peak       int64         // KiB, VmHWM
	hold       time.Duration // how long the connections were held
	open       int           // still open at the end
	firstClose string
	gwCPU      time.Duration // server CPU during the hold
	setup      time.Duration
}

// perConnKiB is the server's RSS growth per idle connection.
func (o idleOutcome) perConnKiB() float64 {
	if o.conns == 0 {
		return 0
	}
	return float64(o.loadedRSS-o.baseRSS) / float64(o.conns)
}

// idleRun is one target's server and load generators during the run.
type idleRun struct {
	out   idleOutcome
	srv   server
	procs []*loadgenProc
	cpu0  time.Duration
}

// stop ends the load generators, then the server.
func (r *idleRun) stop() error {
	for _, p := range r.procs {
		_ = p.stop()
	}
	if r.srv == nil {
		return nil
	}
	return r.srv.stop()
}

// runIdle opens n authenticated sockets that monitor nothing to each
// target in turn, from as many load generators as the open-files limit
// needs, measures each server's RSS once its clients have settled, and then
// holds every target's sockets together for hold.
func (b *bench) runIdle(ctx context.Context, targets []idleTarget, n int, settle, hold time.Duration) (outs []idleOutcome, err error) {
	var runs []*idleRun
	defer func() {
		for i := len(runs) - 1; i >= 0; i-- {
			if stopErr := runs[i].stop(); stopErr != nil && err == nil {
				err = stopErr
			}
		}
	}()
	for _, t := range targets {
		r := &idleRun{out: idleOutcome{target: t, wanted: n, hold: hold}}
		runs = append(runs, r) // stopped by the defer, whatever started
		if err := b.setUpIdle(ctx, r, n, settle); err != nil {
			return nil, fmt.Errorf("%s: %w", t.key, err)
		}
		logf("idle: %s: %.2f KiB per connection, %d connected in %s", t.name, r.out.perConnKiB(), r.out.conns, r.out.setup.Round(time.Second))
	}
	now := time.Now()
	plan := loadgen.Plan{MeasureFrom: now, MeasureUntil: now, DrainUntil: now.Add(hold)}
	for _, r := range runs {
		for _, p := range r.procs {
			if err := p.send(plan); err != nil {
				return nil, err
			}
		}
		if r.cpu0, err = procCPU(r.srv.pid()); err != nil {
			return nil, err
		}
	}
	// The load generators close their sockets at DrainUntil: the end of
	// the hold is sampled just before.
	if err := sleepUntil(ctx, plan.DrainUntil.Add(-2*time.Second)); err != nil {
		return nil, err
	}
	for _, r := range runs {
		cpu1, err := procCPU(r.srv.pid())
		if err != nil {
			return nil, err
		}
		r.out.gwCPU = cpu1 - r.cpu0
		if r.out.endRSS, r.out.peak, err = procMem(r.srv.pid()); err != nil {
			return nil, err
		}
	}
	for _, r := range runs {
		for _, p := range r.procs {
			res, err := p.result(2 * time.Minute)
			if err != nil {
				return nil, err
			}
			r.out.open += res.Open
			if res.FirstClose != "" && r.out.firstClose == "" {
				r.out.firstClose = res.FirstClose
			}
		}
		outs = append(outs, r.out)
	}
	return outs, nil
}

// setUpIdle starts r's server, measures it before and after its n clients
// connect, and leaves the clients waiting for the hold's plan.
func (b *bench) setUpIdle(ctx context.Context, r *idleRun, n int, settle time.Duration) (err error) {
	t := r.out.target
	dir, err := os.MkdirTemp(b.dir, t.key+"-")
	if err != nil {
		return err
	}
	// Every client is its own user, monitoring nothing.
	spec := loadSpec{key: t.key, clients: n, floor: t.floor, tls: t.tls}
	if r.srv, err = b.startServer(ctx, spec, dir); err != nil {
		return err
	}
	gw, _ := r.srv.(*gatewayServer)
	profiling := b.profileDir != "" && gw != nil
	if err := sleepUntil(ctx, time.Now().Add(settle)); err != nil {
		return err
	}
	if r.out.baseRSS, _, err = procMem(r.srv.pid()); err != nil {
		return err
	}
	if profiling {
		// The runtime's memory statistics before any client, to tell what
		// the connections added: heap, stacks, or memory not yet returned.
		if err := gw.fetchAdmin("/debug/vars", filepath.Join(b.profileDir, t.key+".vars.before.json")); err != nil {
			return err
		}
	}
	started := time.Now()
	for i := 0; i*perProcess < n; i++ {
		c := min(perProcess, n-i*perProcess)
		p, err := startLoadgen(b.loadgen, dir, fmt.Sprintf("%s-%d", t.key, i), r.srv.wsURL(), b.token, i*perProcess, c, nil,
			loadgenOptions{tls: b.tlsFor(t.tls)})
		if err != nil {
			return err
		}
		r.procs = append(r.procs, p)
	}
	for _, p := range r.procs {
		ready, err := p.ready(5 * time.Minute)
		if err != nil {
			return err
		}
		r.out.conns += ready.Connected
		if ready.Failed > 0 && r.out.firstClose == "" {
			r.out.firstClose = fmt.Sprintf("%d failed to connect: %s", ready.Failed, ready.FirstErr)
		}
	}
	r.out.setup = time.Since(started)
	if r.out.conns == 0 {
		return errors.New("no client connected: " + r.out.firstClose)
	}
	if err := sleepUntil(ctx, time.Now().Add(settle)); err != nil {
		return err
	}
	if r.out.loadedRSS, _, err = procMem(r.srv.pid()); err != nil {
		return err
	}
	if profiling {
		if err := gw.heapProfile(filepath.Join(b.profileDir, t.key+".heap.pprof")); err != nil {
			return err
		}
		// The runtime's memory statistics (expvar), for stacks vs heap.
		if err := gw.fetchAdmin("/debug/vars", filepath.Join(b.profileDir, t.key+".vars.json")); err != nil {
			return err
		}
	}
	return nil
}
