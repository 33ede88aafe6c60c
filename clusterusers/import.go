package clusterusers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nellis-edge/gateway/users"
)

// importMarker is the key that says the single-node records were
// imported: the first cluster start imports them, later ones do not.
const importMarker = "import.done"

// BidSource is the single-node record of users' bids that ImportOnce
// copies (users.StorageLedger is one).
type BidSource interface {
	// Lots lists the products the user has a record of bids on.
	Lots(ctx context.Context, user string) ([]int64, error)
	LoadBids(ctx context.Context, user string, productID int64) (users.LotBids, uint64, error)
}

// ImportOnce copies the records of names from src (the single-node
// storage the gateway used before the cluster) into the bucket, with the
// record of each of their lots' bids (tried amounts, rate window, last
// bids) from bids when not nil, unless the cluster imported once already;
// a user or lot the bucket holds already keeps the bucket's record. It
// returns how many users it copied. Two nodes starting together may both
// copy: each record is created at most once.
func (s *Store) ImportOnce(ctx context.Context, src users.UserStore, bids BidSource, names []string, key []byte) (int, error) {
	_, err := s.kv.Get(ctx, importMarker)
	switch {
	case err == nil:
		return 0, nil
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, fmt.Errorf("clusterusers: import: %w", err)
	}
	n := 0
	for _, name := range names {
		if err := s.importBids(ctx, bids, name); err != nil {
			return n, err
		}
		rec, err := src.Load(ctx, name, key)
		if err != nil {
			return n, fmt.Errorf("clusterusers: import: %w", err)
		}
		if rec.Quarantined || (len(rec.Auctions) == 0 && rec.Cookies == "" && rec.Unopened == "" && rec.SignedIn.IsZero()) {
			continue
		}
		data, err := encode(name, rec, key)
		if err != nil {
			return n, err
		}
		if _, err := s.kv.Create(ctx, userKey(name), data); isConflict(err) {
			continue
		} else if err != nil {
			return n, fmt.Errorf("clusterusers: import user %q: %w", name, err)
		}
		n++
	}
	if _, err := s.kv.Create(ctx, importMarker, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil && !isConflict(err) {
		return n, fmt.Errorf("clusterusers: import: %w", err)
	}
	return n, nil
}

// StoredNames lists the users storage holds a record of, for ImportOnce;
// nil when it cannot list (the configured users are imported then).
func StoredNames(ctx context.Context, storage users.Storage) ([]string, error) {
	ls, ok := storage.(users.ListingStorage)
	if !ok {
		return nil, nil
	}
	keys, err := ls.List(ctx, path.Dir(users.RecordKey("x")), false)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, users.ErrCannotList) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clusterusers: list stored users: %w", err)
	}
	var names []string
	for _, k := range keys {
		if name, ok := strings.CutSuffix(path.Base(k), ".json"); ok && name != "" {
			names = append(names, name)
		}
	}
	return names, nil
}

// importBids copies the user's records of lots' bids; a lot the bucket
// holds a record of already keeps it.
func (s *Store) importBids(ctx context.Context, bids BidSource, name string) error {
	if bids == nil {
		return nil
	}
	lots, err := bids.Lots(ctx, name)
	if err != nil {
		return fmt.Errorf("clusterusers: import: %w", err)
	}
	ledger := NewLedger(s.kv)
	for _, id := range lots {
		rec, _, err := bids.LoadBids(ctx, name, id)
		if err != nil {
			return fmt.Errorf("clusterusers: import: %w", err)
		}
		if len(rec.Tried) == 0 && len(rec.Rate) == 0 && len(rec.Bids) == 0 && rec.Intent == nil {
			continue
		}
		if _, err := ledger.CommitBids(ctx, name, id, rec, 0); err != nil && !errors.Is(err, users.ErrBidConflict) {
			return err
		}
	}
	return nil
}
