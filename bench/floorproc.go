package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/nellis-edge/gateway/bench/benchcert"
	"github.com/nellis-edge/gateway/bench/floor"
	"github.com/nellis-edge/gateway/nellissim"
)

// floorProc is a running bin/nellis-floor, the machine floor: a minimal
// WebSocket fan-out server that plays the schedule itself (package
// bench/floor). It talks over the same JSON line pipe as a load generator.
type floorProc struct {
	*loadgenProc
	plainRun
	url string
	ids []int64
}

// startFloor starts the floor server, serving wss:// with tf when set, and
// waits for its address. Its schedules may bid on products ids.
func startFloor(bin, dir string, products int, tf *benchcert.Files) (*floorProc, error) {
	args := []string{"-listen", "127.0.0.1:0"}
	if tf != nil {
		args = append(args, "-cert", tf.Cert, "-key", tf.Key)
	}
	cmd := exec.Command(bin, args...)
	p, err := startPiped(cmd, filepath.Join(dir, "floor.log"))
	if err != nil {
		return nil, err
	}
	var hello floor.Hello
	if err := p.next(&hello, 20*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("floor server: %w", err)
	}
	// The floor has no catalogue: any distinct ids will do.
	ids := make([]int64, products)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	return &floorProc{loadgenProc: p, url: hello.URL, ids: ids}, nil
}

func (f *floorProc) wsURL() string     { return f.url }
func (f *floorProc) products() []int64 { return f.ids }

// play hands the schedule to the floor process, which emits it, and waits
// for what it did. opts.Before is not supported: the emitter is in another
// process (inject refuses every fault first).
func (f *floorProc) play(ctx context.Context, sc nellissim.Schedule, opts nellissim.PlayOptions) (nellissim.PlayResult, error) {
	var res nellissim.PlayResult
	if err := f.send(floor.Order{Schedule: sc, Until: opts.Until, Spin: opts.Spin}); err != nil {
		return res, err
	}
	var played floor.Played
	if err := f.next(&played, time.Until(opts.Until)+time.Minute); err != nil {
		if ctx.Err() != nil {
			return res, nil // stopped early, as Simulator.Play
		}
		return res, fmt.Errorf("floor server: %w", err)
	}
	res.Emitted, res.Lags = played.Emitted, played.Lags
	if len(played.Lags) > 0 {
		res.MaxLag = slices.Max(played.Lags)
	}
	return res, nil
}

func (f *floorProc) inject(func(*simulator) error) error { return errNoUpstream }

// profile does nothing: the floor is the reference, not the subject.
func (f *floorProc) profile(time.Duration, string) error { return nil }

// floorBinary checks the floor server's binary when a floor scenario runs.
func floorBinary(bin string) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (go build -o %s ./cmd/nellis-floor, or make bench)", err, bin)
	}
	return nil
}
