package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nellis-edge/gateway/bench/loadgen"
	"github.com/nellis-edge/gateway/nellissim"
)

// loadSpec is one measured run: C clients each monitoring P products while
// the simulator emits Rate events a second over all of them, so each client
// receives Rate changes a second and the gateway delivers C×Rate.
type loadSpec struct {
	key      string // for -only
	name     string
	clients  int
	products int
	rate     float64
	warmup   time.Duration // events before the window, not measured
	window   time.Duration // events measured
	drain    time.Duration // waiting for late deliveries after the window
	// markAfter, with fault, injects the fault this long after the first
	// event; the clients time their first change scheduled after it.
	markAfter time.Duration
	fault     func(*simulator) error
	// floor runs the scenario against the machine floor (bin/nellis-floor)
	// instead of the gateway and the simulator.
	floor bool
	// tls serves the clients over TLS (wss://) with the run's certificate:
	// Caddy terminates it for the gateway, crypto/tls for the floor.
	tls bool
	// users, when positive, is how many users the clients share (1: the
	// old backend's one shared token); 0 gives each client its own.
	users int
	// lots, when set, makes the run an auction night (lotsspecs.go).
	lots *lotsPlan
	// nodes, when positive, serves the clients from that many gateway
	// processes joined over one NATS process (clusterspecs.go).
	nodes int
	// killOwner, in a cluster scenario, SIGKILLs the node owning the most
	// products at the mark (the scenario's fault).
	killOwner bool
}

// socketsPerUser is the gateway's max_sockets_per_user for the scenario:
// every client of a shared user signs in at once.
func (s loadSpec) socketsPerUser() int {
	return max(20, (s.clients+s.userCount()-1)/max(s.userCount(), 1))
}

// userCount is how many users the gateway's config needs.
func (s loadSpec) userCount() int {
	if s.users > 0 {
		return min(s.users, s.clients)
	}
	return s.clients
}

// loadOutcome is what one run measured. The gateway's figures (gwCPU,
// gwRSS, gwPeak) are the floor server's in a floor scenario.
type loadOutcome struct {
	spec   loadSpec
	ready  loadgen.Ready
	res    loadgen.Result
	play   nellissim.PlayResult
	gwCPU  time.Duration // gateway CPU during the window
	simCPU time.Duration // the driver's (the simulator's) CPU during the window
	// others is the CPU every other process on the machine used during the
	// window: other people's builds and tests share these two cores.
	others time.Duration
	// busyBefore is the machine's busy share (1 = a core) in the second
	// before the scenario started.
	busyBefore float64
	gwRSS      int64 // KiB at the window's end
	gwPeak     int64 // KiB, VmHWM
	lgPID      int
	// upOpen and upAccepted are the TCP connections from the gateway to
	// the simulator open at the window's end and accepted since it
	// started (lots scenarios).
	upOpen     int
	upAccepted int64
	// feeds is the gateway's own view of its lots at the window's end
	// (lots scenarios).
	feeds *feedsView
	// cluster is what a cluster scenario measured beyond the rest.
	cluster *clusterOutcome
}

// spin is how long the emitter spins before each event (see
// nellissim.Simulator.Play): at the low rates whose targets are a few
// milliseconds it keeps timer slack out of the latency; at 100 events/s it
// would take a tenth of a core from the gateway, for targets in tens of
// milliseconds or seconds where a millisecond does not matter.
func (s loadSpec) spin() time.Duration {
	if s.rate <= 10 {
		return 1500 * time.Microsecond
	}
	return 0
}

// gwCPUPer1k is the gateway's CPU milliseconds per thousand deliveries.
func (o loadOutcome) gwCPUPer1k() float64 {
	if o.res.Delivered == 0 {
		return 0
	}
	return float64(o.gwCPU.Milliseconds()) / (float64(o.res.Delivered) / 1000)
}

// startServer starts what serves the scenario's clients: the floor
// server, or a simulator and a gateway following it.
func (b *bench) startServer(ctx context.Context, spec loadSpec, dir string) (server, error) {
	if spec.floor {
		if spec.fault != nil {
			return nil, errNoUpstream
		}
		return startFloor(b.floor, dir, spec.products, b.tlsFor(spec.tls))
	}
	if spec.lots != nil {
		return b.startLotsServer(ctx, spec, dir)
	}
	if spec.nodes > 0 {
		return b.startClusterServer(ctx, spec, dir)
	}
	return b.startGatewayServer(ctx, spec, dir)
}

// runLoad starts the server (startServer) and one load generator, plays
// the schedule and collects every figure. Everything it starts is stopped
// before it returns.
func (b *bench) runLoad(ctx context.Context, spec loadSpec) (out loadOutcome, err error) {
	out.spec = spec
	dir, err := os.MkdirTemp(b.dir, spec.key+"-")
	if err != nil {
		return out, err
	}
	srv, err := b.startServer(ctx, spec, dir)
	if err != nil {
		return out, err
	}
	defer func() {
		if stopErr := srv.stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	ids := srv.products()
	lgOpts := loadgenOptions{users: spec.users, tls: b.tlsFor(spec.tls), flags: srv.loadgenFlags()}
	lg, err := startLoadgen(b.loadgen, dir, "loadgen", srv.wsURL(), b.token, 0, spec.clients, ids, lgOpts)
	if err != nil {
		return out, err
	}
	defer lg.stop()
	out.lgPID = lg.pid()
	if out.ready, err = lg.ready(3 * time.Minute); err != nil {
		return out, err
	}
	if out.ready.Connected == 0 {
		return out, fmt.Errorf("no client connected: %s", out.ready.FirstErr)
	}

	start, err := srv.scheduleStart(time.Now().Add(500 * time.Millisecond).Truncate(time.Millisecond))
	if err != nil {
		return out, err
	}
	sc := nellissim.Schedule{Start: start, Rate: spec.rate, Products: ids, BasePrice: basePrice}
	plan := loadgen.Plan{
		Schedule:     sc,
		MeasureFrom:  start.Add(spec.warmup),
		MeasureUntil: start.Add(spec.warmup + spec.window),
		DrainUntil:   start.Add(spec.warmup + spec.window + spec.drain),
	}
	markK := int64(-1)
	if spec.fault != nil {
		markK = int64(spec.markAfter.Seconds() * spec.rate)
		plan.Mark = sc.At(markK)
	}
	if err := srv.shapePlan(&plan); err != nil {
		return out, err
	}
	if err := lg.send(plan); err != nil {
		return out, err
	}
	playCtx, stopPlay := context.WithCancel(ctx)
	defer stopPlay()
	type playOutcome struct {
		res nellissim.PlayResult
		err error
	}
	// The fault runs in the emitter, just before the event due at the
	// mark: every event before it took the healthy path, every one from it
	// on meets the fault.
	var faultErr error // written by the emitter, read after played
	opts := nellissim.PlayOptions{Until: plan.MeasureUntil, Spin: spec.spin(), Before: func(k int64) {
		if k == markK {
			faultErr = srv.inject(spec.fault)
		}
	}}
	// The emitter ends with playCtx at the latest and sends on a buffered
	// channel, so an early return does not leak it.
	played := make(chan playOutcome, 1)
	go func() {
		res, err := srv.play(playCtx, sc, opts)
		played <- playOutcome{res, err}
	}()

	if err := sleepUntil(ctx, plan.MeasureFrom); err != nil {
		return out, err
	}
	cpu0, err := serverCPU(srv)
	if err != nil {
		return out, err
	}
	srv.windowBegins(ctx, plan.MeasureUntil)
	profiled := make(chan error, 1)
	if b.profileDir != "" {
		// Profiling costs the gateway a little CPU; such a run is for
		// finding out why, not for the table.
		go func() {
			profiled <- srv.profile(spec.window, filepath.Join(b.profileDir, spec.key+".pprof"))
		}()
	} else {
		profiled <- nil
	}
	lg0, _ := procCPU(lg.pid())
	self0, busy0 := selfCPU(), mustBusy()
	if err := sleepUntil(ctx, plan.MeasureUntil); err != nil {
		return out, err
	}
	cpu1, err := serverCPU(srv)
	if err != nil {
		return out, err
	}
	lg1, _ := procCPU(lg.pid())
	self1, busy1 := selfCPU(), mustBusy()
	out.gwCPU = cpu1 - cpu0
	out.simCPU = self1 - self0
	out.others = max(0, (busy1-busy0)-out.gwCPU-out.simCPU-(lg1-lg0))
	if out.gwRSS, out.gwPeak, err = serverMem(srv); err != nil {
		return out, err
	}
	if err := srv.measure(&out); err != nil {
		return out, err
	}
	p := <-played
	if os.Getenv("BENCH_DEBUG") != "" {
		for k, lag := range p.res.Lags {
			if lag > 3*time.Millisecond {
				logf("debug: event %d due %s late %s", k, sc.At(int64(k)).Format("15:04:05.000"), lag)
			}
		}
	}
	if out.play = p.res; p.err != nil {
		return out, fmt.Errorf("simulator: %w", p.err)
	}
	if err := <-profiled; err != nil {
		return out, err
	}
	if faultErr != nil {
		return out, fmt.Errorf("fault: %w", faultErr)
	}
	if out.res, err = lg.result(spec.drain + 2*time.Minute); err != nil {
		return out, err
	}
	return out, nil
}

func mustBusy() time.Duration {
	d, _ := machineBusy()
	return d
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
