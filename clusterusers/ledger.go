package clusterusers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nellis-edge/gateway/users"
)

// Ledger is the bidding's record of each user's lot (users.BidLedger) in
// the users' bucket, one key b.<user>.<product> per lot, written by
// compare-and-set on the key's revision: the stream leader decides it
// and replicates it before it is acknowledged, so a bid recorded by one
// owner is known to the next whatever broker fails.
type Ledger struct {
	kv jetstream.KeyValue
}

// NewLedger returns the ledger over the store's bucket.
func NewLedger(kv jetstream.KeyValue) *Ledger { return &Ledger{kv: kv} }

var _ users.BidLedger = (*Ledger)(nil)

func bidsKey(user string, productID int64) string {
	return "b." + encodeName(user) + "." + strconv.FormatInt(productID, 10)
}

// LoadBids reads the lot's record and its revision, 0 when none.
func (l *Ledger) LoadBids(ctx context.Context, user string, productID int64) (users.LotBids, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	e, err := l.kv.Get(ctx, bidsKey(user, productID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return users.LotBids{}, 0, nil
	}
	if err != nil {
		return users.LotBids{}, 0, fmt.Errorf("clusterusers: load bids of %q on %d: %w", user, productID, err)
	}
	var rec users.LotBids
	if json.Unmarshal(e.Value(), &rec) != nil {
		// Unreadable: replaced by the next commit, at its revision.
		return users.LotBids{}, e.Revision(), nil
	}
	return rec, e.Revision(), nil
}

// CommitBids writes the lot's record if its revision is still revision.
func (l *Ledger) CommitBids(ctx context.Context, user string, productID int64, rec users.LotBids, revision uint64) (uint64, error) {
	data, err := json.Marshal(rec.Bounded())
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var rev uint64
	if revision == 0 {
		rev, err = l.kv.Create(ctx, bidsKey(user, productID), data)
	} else {
		rev, err = l.kv.Update(ctx, bidsKey(user, productID), data, revision)
	}
	if isConflict(err) {
		return 0, fmt.Errorf("%w (user %q, product %d)", users.ErrBidConflict, user, productID)
	}
	if err != nil {
		return 0, fmt.Errorf("clusterusers: store bids of %q on %d: %w", user, productID, err)
	}
	return rev, nil
}
