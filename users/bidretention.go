package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxLotBids is the most bids a lot's record keeps, the newest: the
// history the extension shows.
const MaxLotBids = 100

// bidsDir is where StorageLedger keeps every user's records.
const bidsDir = "nellis/bids"

// Bounded is the record with at most MaxLotBids bids, the newest.
func (b LotBids) Bounded() LotBids {
	if n := len(b.Bids); n > MaxLotBids {
		b.Bids = slices.Clone(b.Bids[n-MaxLotBids:])
	}
	return b
}

// Ended is when the lot's record stops mattering: the lot's close as last
// recorded (ClosesAt), or the record's last bid when that came later (a
// soft close extended it) or no close time was recorded; zero for a
// record with neither.
func (b LotBids) Ended() time.Time {
	end := b.ClosesAt
	later := func(t time.Time) {
		if t.After(end) {
			end = t
		}
	}
	for _, r := range b.Bids {
		later(r.At)
	}
	for _, t := range b.Rate {
		later(t)
	}
	if b.Intent != nil {
		later(b.Intent.At)
	}
	return end
}

// Expired says whether the record may be removed at now: its lot ended
// more than retention ago (an empty record has nothing to keep).
func (b LotBids) Expired(now time.Time, retention time.Duration) bool {
	return now.Sub(b.Ended()) > retention
}

// BidSweeper is a BidLedger that can remove the records of lots that ended
// more than a retention ago (Config.BidRetention of the bidding engine).
type BidSweeper interface {
	SweepBids(ctx context.Context, now time.Time, retention time.Duration) (removed int, err error)
}

// Lots lists the products storage holds a record of the user's bids on,
// sorted; none when the storage cannot list keys.
func (l *StorageLedger) Lots(ctx context.Context, user string) ([]int64, error) {
	ls, ok := l.storage.(ListingStorage)
	if !ok {
		return nil, nil
	}
	keys, err := ls.List(ctx, path.Dir(BidsKey(user, 0)), false)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrCannotList) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("users: list the bids of %q: %w", user, err)
	}
	var ids []int64
	for _, k := range keys {
		if u, id, ok := parseBidsKey(k); ok && u == user {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// parseBidsKey is BidsKey's user and product.
func parseBidsKey(key string) (string, int64, bool) {
	rest, ok := strings.CutPrefix(key, bidsDir+"/")
	if !ok {
		return "", 0, false
	}
	user, file := path.Split(rest)
	idText, ok := strings.CutSuffix(file, ".json")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || user == "" {
		return "", 0, false
	}
	return strings.TrimSuffix(user, "/"), id, true
}

// SweepBids removes the records of lots that ended more than retention
// before now. A record that cannot be read is left alone.
func (l *StorageLedger) SweepBids(ctx context.Context, now time.Time, retention time.Duration) (int, error) {
	ls, ok := l.storage.(ListingStorage)
	if !ok {
		return 0, ErrCannotList
	}
	keys, err := ls.List(ctx, bidsDir, true)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("users: list bid records: %w", err)
	}
	removed := 0
	var errs []error
	for _, k := range keys {
		user, id, ok := parseBidsKey(k)
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		gone, err := l.removeExpired(ctx, ls, user, id, now, retention)
		if err != nil {
			errs = append(errs, err)
		}
		if gone {
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// removeExpired removes one record if it expired, under its lock so that
// no commit slips in between.
func (l *StorageLedger) removeExpired(ctx context.Context, ls ListingStorage, user string, id int64, now time.Time, retention time.Duration) (bool, error) {
	defer l.lock(user, id)()
	data, err := l.storage.Load(ctx, BidsKey(user, id))
	if err != nil {
		return false, nil // gone meanwhile, or unreadable: left alone
	}
	var s storedBids
	if json.Unmarshal(data, &s) != nil || !s.Expired(now, retention) {
		return false, nil
	}
	if err := ls.Delete(ctx, BidsKey(user, id)); err != nil {
		return false, fmt.Errorf("users: remove the bids of %q on %d: %w", user, id, err)
	}
	return true, nil
}
