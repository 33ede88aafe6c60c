package wsrelay

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/users"
)

// Users known only from signed tokens come and go (Config.UserRetention):
// one who has not signed in for that long is forgotten in memory (when no
// socket of theirs is open) and their record is removed from storage. The
// sweep runs once the first config with users or a signing key is in
// place (before that, the configured users are not known, and a record
// of one of them must not be taken for a token user's), then daily, on
// the relay's retain goroutine, which ends with the relay.

// retentionEvery is the time between sweeps.
const retentionEvery = 24 * time.Hour

// retentionTimeout bounds one sweep of the storage.
const retentionTimeout = 10 * time.Minute

// retention is the retain goroutine's state.
type retention struct {
	ready  chan struct{} // a config with users is in place: sweep
	stored atomic.Int64  // records in storage at the last sweep
	swept  atomic.Bool   // stored is known
}

// configured notes an applied config; one with users or a key starts
// the sweeps.
func (rt *retention) configured(cfg *Config) {
	if len(cfg.Users) == 0 && !cfg.JWT.Enabled() {
		return
	}
	select {
	case rt.ready <- struct{}{}:
	default:
	}
}

// retain runs the retention sweep: after the first config with users,
// then every retentionEvery, until the relay shuts down.
func (r *Relay) retain() {
	defer r.wg.Done()
	defer r.recoverPanic("retention")
	select {
	case <-r.ctx.Done():
		return
	case <-r.retention.ready:
	}
	ticker := time.NewTicker(retentionEvery)
	defer ticker.Stop()
	for {
		if _, err := r.SweepUsers(r.ctx); err != nil && !errors.Is(err, context.Canceled) {
			r.log().Warn("user retention sweep", zap.Error(err))
		}
		select {
		case <-r.ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// SweepUsers forgets the users known only from tokens who have not signed
// in for UserRetention: in memory those without an open socket, and in
// storage (when it can list keys) every stale record not of a configured
// or signed-in user. It returns the users removed from storage.
func (r *Relay) SweepUsers(ctx context.Context) ([]string, error) {
	cfg := r.config()
	staleBefore := r.now().Add(-time.Duration(cfg.UserRetention))
	r.forgetStale(staleBefore)
	sw, ok := r.store.(users.Sweeper)
	if !ok {
		return nil, nil // users are kept in memory only
	}
	ctx, cancel := context.WithTimeout(ctx, retentionTimeout)
	defer cancel()
	res, err := sw.Sweep(ctx, staleBefore, func(name string) bool {
		if _, ok := cfg.Users[name]; ok || r.dir.Has(name) {
			return true
		}
		r.mu.RLock()
		defer r.mu.RUnlock()
		return r.users[name] != nil
	})
	if errors.Is(err, users.ErrCannotList) {
		return nil, nil
	}
	r.retention.stored.Store(int64(res.Stored))
	r.retention.swept.Store(true)
	r.hooksNow().usersStored(res.Stored)
	for _, name := range res.Removed {
		r.log().Info("user removed: known only from tokens, not signed in within user_retention",
			zap.String("user", name), zap.Duration("user_retention", time.Duration(cfg.UserRetention)))
	}
	return res.Removed, err
}

// forgetStale drops from memory the users known only from tokens who last
// signed in before staleBefore and have no open socket, as a reload drops
// a user it no longer names.
func (r *Relay) forgetStale(staleBefore time.Time) {
	var release []int64
	var gone []*monitored
	r.mu.Lock()
	for _, name := range r.dir.Stale(staleBefore) {
		u := r.users[name]
		if _, loading := r.loadingRemote[name]; loading || (u != nil && len(u.conns) > 0) {
			continue
		}
		r.dir.Forget(name)
		if u == nil {
			continue
		}
		rel, g := r.dropUserLocked(u)
		release, gone = append(release, rel...), append(gone, g...)
	}
	r.mu.Unlock()
	for _, id := range release {
		r.release(id)
	}
	r.refreshAutoBid(uniqueSorted(release)...)
	for _, a := range gone {
		r.forgetAutoBid(a.owner.name, a.ID)
	}
}

// StoredUsers is how many user records the storage held at the last
// retention sweep; false before the first (or without a storage that
// lists keys).
func (r *Relay) StoredUsers() (int, bool) {
	return int(r.retention.stored.Load()), r.retention.swept.Load()
}
