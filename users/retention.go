package users

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// ListingStorage is a Storage that can also list and delete keys, as
// certmagic.Storage (Caddy's ctx.Storage()) can. The retention sweep
// needs it.
type ListingStorage interface {
	Storage
	List(ctx context.Context, prefix string, recursive bool) ([]string, error)
	Delete(ctx context.Context, key string) error
}

// Sweeper is a UserStore that can remove the records of users known only
// from tokens who have not signed in for a while (StorageStore is one).
type Sweeper interface {
	Sweep(ctx context.Context, staleBefore time.Time, keep func(name string) bool) (SweepResult, error)
}

// SweepResult is what one retention sweep found.
type SweepResult struct {
	Stored  int      // records left in storage
	Removed []string // users whose records were removed, in storage order
}

// ErrCannotList is Sweep's error for a storage that cannot list keys.
var ErrCannotList = errors.New("users: the storage cannot list keys: user_retention does nothing")

// Sweep removes the stored records of users who signed in only with
// signed tokens (Record.SignedIn set) and last did before staleBefore,
// unless keep says the user stays (configured, or signed in since the
// record was written). A record that cannot be read is left alone: the
// quarantine deals with it when the user is next loaded.
func (s *StorageStore) Sweep(ctx context.Context, staleBefore time.Time, keep func(name string) bool) (SweepResult, error) {
	var res SweepResult
	ls, ok := s.storage.(ListingStorage)
	if !ok {
		return res, ErrCannotList
	}
	keys, err := ls.List(ctx, path.Dir(RecordKey("x")), false)
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("users: list records: %w", err)
	}
	var errs []error
	for _, key := range keys {
		name, ok := strings.CutSuffix(path.Base(key), ".json")
		if !ok || name == "" {
			continue
		}
		res.Stored++
		if keep(name) {
			continue
		}
		data, err := s.storage.Load(ctx, RecordKey(name))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("users: load user %q: %w", name, err))
			}
			continue
		}
		var stored StoredRecord
		if decodeRecord(data, &stored) != "" || stored.SignedIn.IsZero() || !stored.SignedIn.Before(staleBefore) {
			continue
		}
		if err := ls.Delete(ctx, RecordKey(name)); err != nil {
			errs = append(errs, fmt.Errorf("users: remove user %q: %w", name, err))
			continue
		}
		res.Stored--
		res.Removed = append(res.Removed, name)
	}
	return res, errors.Join(errs...)
}
