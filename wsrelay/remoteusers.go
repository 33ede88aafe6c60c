package wsrelay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// In a cluster only a lot's owner bids on it, and a user of a signed token
// is loaded only where they signed in. So the owner loads, from the users'
// store, a user who signed in elsewhere and has an auction on a lot it
// owns: a remote user, held with no socket of theirs, only so that its
// engine knows their auctions, configs and cookies. The other nodes'
// changes of the user reach it as they reach every loaded user
// (ApplyRecord); what its engine says to them goes to their sockets on the
// other nodes (Peers). It lets go of them once it owns none of their lots
// (ReleaseRemoteUsers), and holds at most a bound of them.

// ErrRemoteUsersFull refuses a remote user beyond the bound.
var ErrRemoteUsersFull = errors.New("wsrelay: remote users at their bound")

// LoadRemoteUser loads name from the store to bid for them here, unless
// they are loaded already, and reports whether it did. limit bounds the
// remote users held at once (ErrRemoteUsersFull). A user whose record
// holds no auction is not loaded.
func (r *Relay) LoadRemoteUser(ctx context.Context, name string, limit int) (bool, error) {
	_, configured := r.config().Users[name]
	r.mu.Lock()
	loaded, closing, held := r.users[name] != nil, r.closing, len(r.remote)
	_, loading := r.loadingRemote[name]
	r.mu.Unlock()
	switch {
	case loaded || configured || loading: // a configured user is every node's, loaded by Configure
		return false, nil
	case closing:
		return false, fmt.Errorf("shutting down")
	case held >= limit:
		return false, ErrRemoteUsersFull
	case r.store == nil:
		return false, nil
	}
	// Until their record is loaded the account has no sign-in time, and
	// the retention sweep (forgetStale) must not take that for a stale one.
	r.mu.Lock()
	r.loadingRemote[name] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.loadingRemote, name)
		r.mu.Unlock()
	}()
	// An account made as a token user's, never signed in here: the
	// retention sweep goes by the sign-in their record holds.
	_, created := r.dir.SignIn(name, time.Time{})
	ctx, cancel := context.WithTimeout(ctx, tokenLoadTimeout)
	rec, err := r.store.Load(ctx, name, r.cookieKeyNow())
	cancel()
	if err != nil || len(rec.Auctions) == 0 {
		r.mu.RLock()
		taken := r.users[name] != nil // by a sign-in meanwhile
		r.mu.RUnlock()
		if created && !taken {
			r.dir.Forget(name)
		}
		return false, err
	}
	r.dir.SetSignedIn(name, rec.SignedIn)
	r.mu.Lock()
	switch {
	case r.closing:
		r.mu.Unlock()
		return false, fmt.Errorf("shutting down")
	case r.users[name] != nil: // a concurrent sign-in loaded them
		r.mu.Unlock()
		return false, nil
	}
	u, acquire := r.addUserLocked(name, rec)
	r.remote[name] = u
	r.mu.Unlock()
	for _, id := range acquire {
		r.acquire(id)
	}
	r.refreshAutoBid(uniqueSorted(acquire)...)
	return true, nil
}

// ReleaseRemoteUsers lets go of the remote users with no auction on a
// product keep says this node still needs (it owns), and no socket here,
// and returns their names, sorted.
func (r *Relay) ReleaseRemoteUsers(keep func(productID int64) bool) []string {
	var names []string
	var release []int64
	var gone []*monitored
	r.mu.Lock()
	for name, u := range r.remote {
		if len(u.conns) > 0 || r.keepsRemoteLocked(u, keep) {
			continue
		}
		r.dir.Forget(name)
		rel, g := r.dropUserLocked(u)
		release, gone = append(release, rel...), append(gone, g...)
		names = append(names, name)
	}
	r.mu.Unlock()
	for _, id := range release {
		r.release(id)
	}
	r.refreshAutoBid(uniqueSorted(release)...)
	for _, a := range gone {
		r.forgetAutoBid(a.owner.name, a.ID)
	}
	slices.Sort(names)
	return names
}

func (r *Relay) keepsRemoteLocked(u *user, keep func(int64) bool) bool {
	for _, m := range u.auctions {
		if keep(m.ProductID) {
			return true
		}
	}
	return false
}

// RemoteUsers is how many remote users this node holds.
func (r *Relay) RemoteUsers() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.remote)
}

// Loaded reports whether name is loaded here, with or without sockets.
func (r *Relay) Loaded(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.users[name] != nil
}
