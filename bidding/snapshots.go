package bidding

import (
	"context"

	"github.com/nellis-edge/gateway/clock"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
)

// TimedSnapshots is a hub.SnapshotFetcher that feeds every snapshot's Date
// header to a ServerClock: the hub polls every watched product, so the
// estimate stays fresh before any bid is sent. Wrap the hub's fetcher with
// it and give the engine the same ServerClock.
type TimedSnapshots struct {
	Fetcher hub.SnapshotFetcher
	Server  *ServerClock
	// Clock is the local clock, the engine's. Default: the system clock.
	Clock clock.Clock
}

// Snapshot fetches through Fetcher and records when it was answered.
func (t TimedSnapshots) Snapshot(ctx context.Context, productID int64, cookies string) (nellis.Snapshot, error) {
	clk := t.Clock
	if clk == nil {
		clk = clock.System{}
	}
	sent := clk.Now()
	snap, err := t.Fetcher.Snapshot(ctx, productID, cookies)
	if err == nil && t.Server != nil {
		t.Server.ObserveDate(snap.ServerDate, sent, clk.Now())
	}
	return snap, err
}

var _ hub.SnapshotFetcher = TimedSnapshots{}
