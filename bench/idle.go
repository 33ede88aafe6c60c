package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nellis-edge/gateway/bench/loadgen"
)

// perProcess keeps each load generator under the open-files limit of
// 20,000 per process, with room for its other files.
const perProcess = 9_500

// idleOutcome is the idle-connection memory run.
type idleOutcome struct {
	conns      int           // connected
	wanted     int           // asked for
	baseRSS    int64         // KiB before any client
	loadedRSS  int64         // KiB with every client connected and settled
	endRSS     int64         // KiB at the end of the hold
	peak       int64         // KiB, VmHWM
	hold       time.Duration // how long the connections were held
	open       int           // still open at the end
	firstClose string
	gwCPU      time.Duration // gateway CPU during the hold
	setup      time.Duration
}

// perConnKiB is the gateway's RSS growth per idle connection.
func (o idleOutcome) perConnKiB() float64 {
	if o.conns == 0 {
		return 0
	}
	return float64(o.loadedRSS-o.baseRSS) / float64(o.conns)
}

// runIdle opens n authenticated sockets that monitor nothing, from as many
// load generators as the open-files limit needs, measures the gateway's RSS
// and holds them for hold.
func (b *bench) runIdle(ctx context.Context, n int, settle, hold time.Duration) (out idleOutcome, err error) {
	out.wanted, out.hold = n, hold
	dir, err := os.MkdirTemp(b.dir, "idle-")
	if err != nil {
		return out, err
	}
	sim, err := startSimulator()
	if err != nil {
		return out, err
	}
	defer sim.close()
	gw, err := startGateway(ctx, b.caddy, dir, sim.url, b.token, n, b.profileDir != "")
	if err != nil {
		return out, err
	}
	defer func() {
		if stopErr := gw.stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	if err := sleepUntil(ctx, time.Now().Add(settle)); err != nil {
		return out, err
	}
	if out.baseRSS, _, err = procMem(gw.pid()); err != nil {
		return out, err
	}
	if b.profileDir != "" {
		// The runtime's memory statistics before any client, to tell what
		// the connections added: heap, stacks, or memory not yet returned.
		if err := gw.fetchAdmin("/debug/vars", filepath.Join(b.profileDir, "idle.vars.before.json")); err != nil {
			return out, err
		}
	}
	started := time.Now()
	var procs []*loadgenProc
	defer func() {
		for _, p := range procs {
			_ = p.stop()
		}
	}()
	for i := 0; i*perProcess < n; i++ {
		c := min(perProcess, n-i*perProcess)
		p, err := startLoadgen(b.loadgen, dir, fmt.Sprintf("idle-%d", i), gw.wsURL(), b.token, i*perProcess, c, nil)
		if err != nil {
			return out, err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		r, err := p.ready(5 * time.Minute)
		if err != nil {
			return out, err
		}
		out.conns += r.Connected
		if r.Failed > 0 && out.firstClose == "" {
			out.firstClose = fmt.Sprintf("%d failed to connect: %s", r.Failed, r.FirstErr)
		}
	}
	out.setup = time.Since(started)
	if err := sleepUntil(ctx, time.Now().Add(settle)); err != nil {
		return out, err
	}
	if out.loadedRSS, _, err = procMem(gw.pid()); err != nil {
		return out, err
	}
	if b.profileDir != "" {
		if err := gw.heapProfile(filepath.Join(b.profileDir, "idle.heap.pprof")); err != nil {
			return out, err
		}
		// The runtime's memory statistics (expvar), for stacks vs heap.
		if err := gw.fetchAdmin("/debug/vars", filepath.Join(b.profileDir, "idle.vars.json")); err != nil {
			return out, err
		}
	}
	cpu0, err := procCPU(gw.pid())
	if err != nil {
		return out, err
	}
	now := time.Now()
	plan := loadgen.Plan{MeasureFrom: now, MeasureUntil: now, DrainUntil: now.Add(hold)}
	for _, p := range procs {
		if err := p.send(plan); err != nil {
			return out, err
		}
	}
	// The load generators close their sockets at DrainUntil: the end of
	// the hold is sampled just before.
	if err := sleepUntil(ctx, plan.DrainUntil.Add(-2*time.Second)); err != nil {
		return out, err
	}
	cpu1, err := procCPU(gw.pid())
	if err != nil {
		return out, err
	}
	out.gwCPU = cpu1 - cpu0
	if out.endRSS, out.peak, err = procMem(gw.pid()); err != nil {
		return out, err
	}
	for _, p := range procs {
		res, err := p.result(2 * time.Minute)
		if err != nil {
			return out, err
		}
		out.open += res.Open
		if res.FirstClose != "" && out.firstClose == "" {
			out.firstClose = res.FirstClose
		}
	}
	return out, nil
}
