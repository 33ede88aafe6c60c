package users

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Saver writes changed users' records to a UserStore, flush after flush
// from one goroutine (Run), so a user's writes are ordered and each writes
// the latest state. Changes are collected for Delay; Run writes what is
// pending when its context ends.
type Saver struct {
	store UserStore
	opts  SaverOptions
	kick  chan struct{}

	mu    sync.Mutex // a leaf
	dirty map[string]struct{}
}

// SaverOptions are what a Saver reads the records and settings from.
type SaverOptions struct {
	// Snapshot returns the user's record as it is now, false for a user
	// that is gone (nothing is written then). Called from several of the
	// saver's goroutines at once, for different users, with none of the
	// Saver's locks held. Required.
	Snapshot func(name string) (Record, bool)
	// Key returns the cookie key to seal with now, nil for none.
	Key func() []byte
	// Delay returns how long changes are collected before a write.
	Delay func() time.Duration
	// Logger returns the logger to use now. Default: none.
	Logger func() *zap.Logger
}

// NewSaver returns a saver writing to store; a nil store makes a saver
// that never writes (users' data is kept in memory only).
func NewSaver(store UserStore, opts SaverOptions) *Saver {
	return &Saver{store: store, opts: opts, kick: make(chan struct{}, 1), dirty: make(map[string]struct{})}
}

// MarkDirty asks for the user's record to be written.
func (s *Saver) MarkDirty(name string) {
	if s.store == nil {
		return
	}
	s.mu.Lock()
	s.dirty[name] = struct{}{}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run writes changed records until ctx ends, then writes what is still
// pending (that last flush outlives ctx on purpose).
func (s *Saver) Run(ctx context.Context) {
	defer s.flush(context.Background())
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		delay := time.NewTimer(s.opts.Delay())
		select {
		case <-ctx.Done():
			delay.Stop()
			return
		case <-delay.C:
		}
		s.flush(ctx)
	}
}

func (s *Saver) flush(ctx context.Context) {
	s.mu.Lock()
	names := make([]string, 0, len(s.dirty))
	for name := range s.dirty {
		names = append(names, name)
	}
	clear(s.dirty)
	s.mu.Unlock()
	slices.Sort(names)
	// A user appears once per flush, so writing different users at once
	// keeps each user's writes in order. One at a time, a flush after
	// thousands of bidders connect took tens of seconds: each file write
	// is synced (~4 ms here), each cluster save is a round trip to NATS.
	next := make(chan string)
	var wg sync.WaitGroup
	for range min(len(names), saveWorkers) {
		wg.Go(func() {
			for name := range next {
				if err := s.save(ctx, name); err != nil {
					// Logged once per debounced save, never per retry loop.
					s.log().Error("saving user data failed", zap.String("user", name), zap.Error(err))
				}
			}
		})
	}
	for _, name := range names {
		next <- name
	}
	close(next)
	wg.Wait()
}

// saveWorkers is how many users' records a flush writes at once: enough
// to keep a disk's or NATS's round trips overlapped, few enough that a
// flush of ten thousand users is not ten thousand goroutines.
const saveWorkers = 8

func (s *Saver) save(ctx context.Context, name string) error {
	var key []byte
	if s.opts.Key != nil {
		key = s.opts.Key()
	}
	if ss, ok := s.store.(SnapshotSaver); ok {
		return ss.SaveSnapshot(ctx, name, func() (Record, bool) { return s.opts.Snapshot(name) }, key)
	}
	rec, ok := s.opts.Snapshot(name)
	if !ok {
		return nil
	}
	return s.store.Save(ctx, name, rec, key)
}

func (s *Saver) log() *zap.Logger {
	if s.opts.Logger == nil {
		return zap.NewNop()
	}
	return s.opts.Logger()
}
