package bidding

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/users"
)

// Each user's record of a lot's bids (Options.Ledger) would otherwise be
// kept for ever: the sweep removes the records of lots that closed more
// than Config.BidRetention ago, at start and then daily, on one goroutine
// of the engine that ends with it. In a cluster every node sweeps the
// shared bucket; each removal holds only at the revision found expired.

// bidSweepEvery is the time between sweeps; bidSweepTimeout bounds one.
const (
	bidSweepEvery   = 24 * time.Hour
	bidSweepTimeout = 10 * time.Minute
)

// RetainBids starts the sweeps of bid records, once: the module calls it
// when the gateway starts. It does nothing after Close.
func (e *Engine) RetainBids() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.retaining {
		return
	}
	e.retaining = true
	e.wg.Add(1)
	go e.retainBids()
}

func (e *Engine) retainBids() {
	defer e.wg.Done()
	defer e.recoverPanic("bid retention")
	ticker := time.NewTicker(bidSweepEvery)
	defer ticker.Stop()
	for {
		if _, err := e.SweepBids(e.ctx); err != nil && !errors.Is(err, context.Canceled) {
			e.log().Warn("bid retention sweep", zap.Error(err))
		}
		select {
		case <-e.ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// SweepBids removes the records of lots that ended more than BidRetention
// ago from the ledger in use, when it can (users.BidSweeper), and returns
// how many it removed.
func (e *Engine) SweepBids(ctx context.Context) (int, error) {
	sw, ok := e.cluster().Ledger.(users.BidSweeper)
	if !ok {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, bidSweepTimeout)
	defer cancel()
	retention := time.Duration(e.config().BidRetention)
	n, err := sw.SweepBids(ctx, e.clock.Now(), retention)
	if errors.Is(err, users.ErrCannotList) {
		return 0, nil
	}
	if n > 0 {
		e.log().Info("bid records removed: their lots ended over bid_retention ago",
			zap.Int("records", n), zap.Duration("bid_retention", retention))
	}
	return n, err
}
