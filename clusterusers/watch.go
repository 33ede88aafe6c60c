package clusterusers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/users"
)

// Watch starts applying the records other nodes write to this node's
// users: each update of a user this node has loaded goes to
// Options.Changed, to be merged with what the user changed here since. Writes this node made itself, and records it already
// knows, are skipped. The other users' records, those stored at the start
// and each change since, index them as strangers (strangers.go). It runs
// until Close.
func (s *Store) Watch(ctx context.Context) error {
	if s.opts.Changed == nil {
		return errors.New("clusterusers: Watch needs Changed")
	}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watcher != nil {
		return errors.New("clusterusers: already watching")
	}
	w, err := s.kv.Watch(ctx, "u.>")
	if err != nil {
		return fmt.Errorf("clusterusers: watching users: %w", err)
	}
	s.watcher, s.done = w, make(chan struct{})
	go s.follow(w, s.done)
	return nil
}

// follow applies the watch's updates until it is stopped.
func (s *Store) follow(w jetstream.KeyWatcher, done chan<- struct{}) {
	defer close(done)
	for e := range w.Updates() {
		if e == nil {
			continue // the end of the initial values
		}
		s.apply(e)
	}
}

// apply merges one update into the user's record here.
func (s *Store) apply(e jetstream.KeyValueEntry) {
	defer func() {
		if v := recover(); v != nil {
			s.log().Error("panic applying a user's change from the cluster", zap.Any("panic", v), zap.StackSkip("stack", 1))
		}
	}()
	name, ok := decodeName(strings.TrimPrefix(e.Key(), "u."))
	if !ok {
		return
	}
	base, ok := s.known(name)
	if !ok {
		// Not loaded here (its Load reads it whole): a stranger, or no
		// longer one when the record was removed.
		var products []int64
		if e.Operation() == jetstream.KeyValuePut {
			products = recordProducts(e.Value())
		}
		s.strangers.set(name, products)
		if s.opts.Stranger != nil {
			s.opts.Stranger(name, products)
		}
		return
	}
	if e.Operation() != jetstream.KeyValuePut || e.Revision() <= base.revision {
		return // removed (a loaded user stays), or known already
	}
	theirs := s.decode(name, e.Value(), s.opts.Key())
	// The base moves with the user's record here, not before it: a save
	// that took the record before this merge must not go out on it.
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if base, _ = s.known(name); e.Revision() <= base.revision {
		return // known since: written or merged by a save meanwhile
	}
	s.remember(name, theirs, e.Revision())
	s.opts.Changed(name, func(local users.Record) users.Record { return merge(base.rec, local, theirs) })
}

// Close stops the watch and waits for its goroutine.
func (s *Store) Close() {
	s.watchMu.Lock()
	w, done := s.watcher, s.done
	s.watcher = nil
	s.watchMu.Unlock()
	if w == nil {
		return
	}
	_ = w.Stop()
	select {
	case <-done:
	case <-time.After(closeWait):
		// The connection closed first: the watch's channel is never
		// closed then (no callbacks after the client closes), and the
		// goroutine ends with the process.
		s.log().Warn("the users' watch did not end: close the store before the bus")
	}
}

// closeWait bounds Close's wait for the watch's goroutine.
const closeWait = 5 * time.Second
