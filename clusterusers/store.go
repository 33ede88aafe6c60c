// Package clusterusers keeps the users and their bids of a cluster of
// gateways in NATS JetStream: Store is the users.UserStore on the
// key-value bucket <prefix>_users, each user's record under one key,
// written by compare-and-set and merged on conflict, watched so every
// node applies the others' changes; Ledger is the bidding's record of
// each user's lot (users.BidLedger) in the same bucket; Forwarder takes a
// manual bid to the node that owns its lot by request and reply.
//
// It knows no Caddy, hub or relay: the module wires Store's Changed to
// the relay and Ledger and Forwarder to the engine.
package clusterusers

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/users"
)

// Options are a Store's settings and collaborators.
type Options struct {
	// Prefix and Replicas name and size the bucket (<prefix>_users), as
	// the cluster's config gives them. Required.
	Prefix   string
	Replicas int
	// Logger returns the logger to use now. Default: none.
	Logger func() *zap.Logger
	// Key returns the cookie key now: cookies are sealed with it in the
	// bucket and opened with it from there. Required.
	Key func() []byte
	// Changed is told that another node changed a user this node has
	// loaded: merge turns the user's record here (with the changes not
	// saved yet) into what it must become, their changes applied. The
	// callee calls merge under the lock its own changes of the user take
	// (the relay's), so no local change slips in between. Called from the
	// watch's goroutine, one user at a time. Required for Watch.
	Changed func(name string, merge func(local users.Record) users.Record)
	// Stranger is told, from the watch's goroutine, that the stored
	// record of a user this node has not loaded (at the watch's start,
	// or since) has auctions on products, sorted (none: no auction
	// left); see Strangers. It must not wait on I/O. Optional.
	Stranger func(name string, products []int64)
}

// Store is the users.UserStore over the bucket <prefix>_users.
type Store struct {
	kv   jetstream.KeyValue
	opts Options

	mu   sync.Mutex // a leaf
	base map[string]known

	// applyMu orders the records this node merges into its users (the
	// watch's, a save's) against the records SaveSnapshot takes: a
	// record taken before a merge never goes out on the merged base,
	// which would write over the other node's change. Taken before
	// the caller's locks (Changed's, the snapshot's).
	applyMu sync.Mutex

	strangers *strangers

	watchMu sync.Mutex
	watcher jetstream.KeyWatcher
	done    chan struct{}
}

// known is a user's record as this node last read or wrote it, with its
// revision: the base of the next three-way merge.
type known struct {
	rec      users.Record
	revision uint64
}

var _ users.UserStore = (*Store)(nil)

// storeTimeout bounds one read or write of the bucket.
const storeTimeout = 10 * time.Second

// maxAttempts bounds the merges of one save: each conflict means another
// node wrote in between, which a busy user can do only so often.
const maxAttempts = 20

// Bucket names the users' bucket.
func Bucket(prefix string) string { return prefix + "_users" }

// Open creates or updates the bucket; it does not watch yet.
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	if js == nil {
		return nil, errors.New("clusterusers: not connected")
	}
	if opts.Key == nil {
		return nil, errors.New("clusterusers: a cookie key is required: cookies travel sealed")
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket(opts.Prefix),
		Description: "Nellis Edge: users' auctions, configs, sealed cookies and bid records",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(opts.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("clusterusers: creating bucket %s: %w", Bucket(opts.Prefix), err)
	}
	return &Store{kv: kv, opts: opts, base: make(map[string]known), strangers: newStrangers()}, nil
}

// KeyValue is the bucket, shared with the Ledger.
func (s *Store) KeyValue() jetstream.KeyValue { return s.kv }

func (s *Store) log() *zap.Logger {
	if s.opts.Logger == nil {
		return zap.NewNop()
	}
	return s.opts.Logger()
}

// encodeName makes a user's name one token of a key: names may hold
// characters keys may not.
func encodeName(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

func decodeName(token string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	return string(b), err == nil
}

// userKey is where a user's record lives.
func userKey(name string) string { return "u." + encodeName(name) }

// isConflict reports a compare-and-set the bucket refused.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// Load reads a user's record, opening its cookies with key; a missing
// record is an empty one. A record that cannot be read is an empty one
// too (the next save replaces it), logged: the quarantine of a single
// node's storage has no place to set it aside here.
func (s *Store) Load(ctx context.Context, name string, key []byte) (users.Record, error) {
	rec, rev, err := s.read(ctx, name, key)
	if err != nil {
		return users.Record{}, err
	}
	s.remember(name, rec, rev)
	return rec, nil
}

// read is the stored record and its revision, 0 when there is none.
func (s *Store) read(ctx context.Context, name string, key []byte) (users.Record, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	e, err := s.kv.Get(ctx, userKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return users.Record{}, 0, nil
	}
	if err != nil {
		return users.Record{}, 0, fmt.Errorf("clusterusers: load user %q: %w", name, err)
	}
	return s.decode(name, e.Value(), key), e.Revision(), nil
}

// decode opens a stored record; one that cannot be read is empty.
func (s *Store) decode(name string, data []byte, key []byte) users.Record {
	var stored users.StoredRecord
	if err := json.Unmarshal(data, &stored); err != nil || stored.Version != users.RecordVersion {
		s.log().Error("user record in the cluster cannot be read: the user starts empty and the next save replaces it",
			zap.String("user", name))
		return users.Record{}
	}
	rec := users.Record{Auctions: stored.Auctions, SignedIn: stored.SignedIn}
	if stored.SealedCookies != "" {
		cookies, err := users.OpenCookies(key, name, stored.SealedCookies)
		if err != nil || key == nil {
			s.log().Warn("stored cookies not used: they do not decrypt with this cookie_key; they are kept sealed", zap.String("user", name))
			rec.Unopened = stored.SealedCookies
		} else {
			rec.Cookies = cookies
		}
	}
	return rec
}

// encode is the record as stored, its cookies sealed with key.
func encode(name string, rec users.Record, key []byte) ([]byte, error) {
	stored := users.StoredRecord{Version: users.RecordVersion, Auctions: slices.Clone(rec.Auctions), SignedIn: rec.SignedIn}
	if stored.Auctions == nil {
		stored.Auctions = []users.Auction{}
	}
	slices.SortFunc(stored.Auctions, func(a, b users.Auction) int {
		return cmp.Or(cmp.Compare(a.AddedAt, b.AddedAt), cmp.Compare(a.ID, b.ID))
	})
	stored.SealedCookies = rec.Unopened
	if key != nil && rec.Cookies != "" {
		sealed, err := users.SealCookies(key, name, rec.Cookies)
		if err != nil {
			return nil, fmt.Errorf("seal cookies: %w", err)
		}
		stored.SealedCookies = sealed
	}
	return json.Marshal(stored)
}

func (s *Store) remember(name string, rec users.Record, rev uint64) {
	s.mu.Lock()
	if k, ok := s.base[name]; !ok || rev >= k.revision {
		s.base[name] = known{rec: cloneRecord(rec), revision: rev}
	}
	s.mu.Unlock()
	s.strangers.set(name, nil) // loaded here: the watch applies their changes
}

func (s *Store) known(name string) (known, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.base[name]
	return k, ok
}

// Save writes the user's record by compare-and-set on the revision this
// node last saw. When another node wrote in between, their record is
// read, what this node changed since its last read (auctions added,
// removed or reconfigured, cookies) is applied to it, and the write is
// tried again: concurrent edits on two nodes lose nothing. After a merge
// the user's record here takes the other nodes' changes (Changed).
//
// rec must not have been taken before a change the watch merged into the
// user since: Save would take it for one made after, and write over that
// change. While the store watches, save with SaveSnapshot.
func (s *Store) Save(ctx context.Context, name string, rec users.Record, key []byte) error {
	base, ok := s.known(name)
	return s.save(ctx, name, rec, base, ok, key)
}

// SaveSnapshot is Save of the record snapshot returns, taken together
// with the revision it is based on, while no other node's change is
// being merged into the user here. A change merged after it is one
// the write conflicts with, and merges.
func (s *Store) SaveSnapshot(ctx context.Context, name string, snapshot func() (users.Record, bool), key []byte) error {
	s.applyMu.Lock()
	rec, found := snapshot()
	base, ok := s.known(name)
	s.applyMu.Unlock()
	if !found {
		return nil
	}
	return s.save(ctx, name, rec, base, ok, key)
}

var _ users.SnapshotSaver = (*Store)(nil)

// save writes rec, which reflects base (ok: base is known).
func (s *Store) save(ctx context.Context, name string, rec users.Record, base known, ok bool, key []byte) error {
	if key == nil {
		return errors.New("clusterusers: no cookie key: cookies must travel sealed")
	}
	ours := rec
	merged := false
	if !ok {
		theirs, rev, err := s.read(ctx, name, key)
		if err != nil {
			return err
		}
		// Never read: whatever is stored is theirs, and all of rec is ours.
		base = known{rec: theirs, revision: rev}
		rec, merged = merge(users.Record{}, rec, theirs), true
	}
	for range maxAttempts {
		data, err := encode(name, rec, key)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, storeTimeout)
		var rev uint64
		if base.revision == 0 {
			rev, err = s.kv.Create(wctx, userKey(name), data)
		} else {
			rev, err = s.kv.Update(wctx, userKey(name), data, base.revision)
		}
		cancel()
		if err == nil {
			s.applyMu.Lock()
			s.remember(name, rec, rev)
			if merged && s.opts.Changed != nil {
				// What the other nodes wrote is known now, so the watch
				// skips it: this node takes it from the merge instead,
				// keeping what changed here since ours was taken.
				written := rec
				s.opts.Changed(name, func(local users.Record) users.Record { return merge(ours, local, written) })
			}
			s.applyMu.Unlock()
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("clusterusers: save user %q: %w", name, err)
		}
		theirs, theirRev, err := s.read(ctx, name, key)
		if err != nil {
			return err
		}
		rec, merged = merge(base.rec, rec, theirs), true
		// Not remembered yet: this node's record takes theirs only
		// with the write (Changed above); until then the watch may
		// merge it, and a snapshot taken meanwhile is based on ours.
		base = known{rec: theirs, revision: theirRev}
	}
	return fmt.Errorf("clusterusers: save user %q: still conflicting after %d merges", name, maxAttempts)
}

// Quarantined lists nothing: a record the bucket holds that cannot be
// read is replaced at the next save (see Load).
func (s *Store) Quarantined() []users.QuarantinedRecord { return nil }

// Delete removes a user's record.
func (s *Store) Delete(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := s.kv.Delete(ctx, userKey(name)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("clusterusers: remove user %q: %w", name, err)
	}
	s.mu.Lock()
	delete(s.base, name)
	s.mu.Unlock()
	s.strangers.set(name, nil)
	return nil
}

// List names the users the bucket holds a record of, sorted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	keys, err := s.kv.ListKeysFiltered(ctx, "u.>")
	if err != nil {
		return nil, fmt.Errorf("clusterusers: list users: %w", err)
	}
	var names []string
	for k := range keys.Keys() {
		if name, ok := decodeName(strings.TrimPrefix(k, "u.")); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Sweep removes the records of users known only from signed tokens who
// last signed in before staleBefore, unless keep says they stay
// (users.Sweeper, for user_retention).
func (s *Store) Sweep(ctx context.Context, staleBefore time.Time, keep func(name string) bool) (users.SweepResult, error) {
	var res users.SweepResult
	names, err := s.List(ctx)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, name := range names {
		res.Stored++
		if keep(name) {
			continue
		}
		e, err := s.kv.Get(ctx, userKey(name))
		if err != nil {
			continue
		}
		var stored users.StoredRecord
		if json.Unmarshal(e.Value(), &stored) != nil || stored.SignedIn.IsZero() || !stored.SignedIn.Before(staleBefore) {
			continue
		}
		if err := s.Delete(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Stored--
		res.Removed = append(res.Removed, name)
	}
	return res, errors.Join(errs...)
}

var _ users.Sweeper = (*Store)(nil)
