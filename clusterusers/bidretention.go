package clusterusers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nellis-edge/gateway/users"
)

var _ users.BidSweeper = (*Ledger)(nil)

// SweepBids removes the records of lots that ended more than retention
// before now (users.LotBids.Expired), each only at the revision found
// expired, so an owner's commit in between keeps its record. Every node
// sweeps; what one removed the others find gone. The delete markers the
// removals leave are purged once older than the bucket's default (30
// minutes), at this sweep or the next, so removed lots leave nothing.
func (l *Ledger) SweepBids(ctx context.Context, now time.Time, retention time.Duration) (int, error) {
	keys, err := l.kv.ListKeysFiltered(ctx, "b.>")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("clusterusers: list bid records: %w", err)
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	removed := 0
	var errs []error
	for _, k := range names {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		e, err := l.kv.Get(ctx, k)
		if err != nil {
			continue // removed meanwhile
		}
		var rec users.LotBids
		if json.Unmarshal(e.Value(), &rec) != nil || !rec.Expired(now, retention) {
			continue
		}
		err = l.kv.Purge(ctx, k, jetstream.LastRevision(e.Revision()))
		switch {
		case err == nil:
			removed++
		case !isConflict(err):
			errs = append(errs, fmt.Errorf("clusterusers: remove bid record %s: %w", k, err))
		}
	}
	if removed > 0 {
		if err := l.kv.PurgeDeletes(ctx); err != nil {
			errs = append(errs, fmt.Errorf("clusterusers: purge removed bid records: %w", err))
		}
	}
	return removed, errors.Join(errs...)
}
