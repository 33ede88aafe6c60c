package wsrelay

import (
	"context"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/tokens"
	"github.com/nellis-edge/gateway/users"
)

// Signing in with a signed token (Config.JWT) beside the configured users'
// tokens: a presented token that is no configured user's and has a JWT's
// shape is verified (package tokens); the user it names is loaded from
// storage at their first sign-in, or made, and stays in memory like a
// configured user until the retention sweep forgets them. A socket signed
// in with a signed token is closed with 1008 "token expired" at its exp.

// reasonTokenExpired closes a socket whose signed token expired.
const reasonTokenExpired = "token expired"

// signInSaveEvery is how stale the stored last sign-in may get before a
// sign-in writes the user's record: the retention sweep counts in days,
// and a sign-in should not cost a write each time.
const signInSaveEvery = time.Hour

// tokenLoadTimeout bounds loading a token user's record at sign-in.
const tokenLoadTimeout = 10 * time.Second

// signIn finds the user a presented token names. A configured user's
// token wins; then a signed token. expires is zero for a configured
// user's token. configured is false when no user and no key is set (the
// server cannot sign anyone in). refusal is the reason given to the
// client, which never quotes the token; "" with a nil user is a wrong
// configured token.
func (r *Relay) signIn(token string) (u *user, expires time.Time, configured bool, refusal string) {
	if u, _ = r.authenticate(token); u != nil {
		return u, time.Time{}, true, ""
	}
	v := r.verifier.Load()
	configured = len(r.config().Users) > 0 || v != nil
	if v == nil || !tokens.LooksLikeToken(token) {
		return nil, time.Time{}, configured, errInvalidToken
	}
	name, exp, err := v.Verify(token)
	if err != nil {
		return nil, time.Time{}, true, fmt.Sprintf("%s: %v", errInvalidToken, err)
	}
	u, err = r.tokenUser(name)
	if err != nil {
		r.log().Error("token user not loaded", zap.String("user", name), zap.Error(err))
		return nil, time.Time{}, true, errServerMisconfig
	}
	return u, exp, true, ""
}

// tokenUser returns the user a valid signed token names, loading their
// record at the first sign-in since the start (or making them), and notes
// the sign-in.
func (r *Relay) tokenUser(name string) (*user, error) {
	now := r.now()
	prev, created := r.dir.SignIn(name, now)
	r.mu.RLock()
	u := r.users[name]
	r.mu.RUnlock()
	if u == nil {
		var rec users.Record
		if r.store != nil {
			ctx, cancel := context.WithTimeout(r.ctx, tokenLoadTimeout)
			var err error
			rec, err = r.store.Load(ctx, name, r.cookieKeyNow())
			cancel()
			if err != nil {
				if created {
					r.dir.Forget(name)
				}
				return nil, err
			}
		}
		if rec.SignedIn.After(prev) {
			prev = rec.SignedIn
		}
		var acquire []int64
		r.mu.Lock()
		if r.closing {
			r.mu.Unlock()
			return nil, fmt.Errorf("shutting down")
		}
		if u = r.users[name]; u == nil { // else loaded by a concurrent sign-in
			u, acquire = r.addUserLocked(name, rec)
		}
		r.mu.Unlock()
		if rec.Quarantined {
			r.saver.MarkDirty(name)
		}
		for _, id := range acquire {
			r.acquire(id)
		}
		r.refreshAutoBid(uniqueSorted(acquire)...)
	}
	r.mu.Lock()
	delete(r.remote, name) // signed in here: a user of this node's now
	r.mu.Unlock()
	if now.Sub(prev) >= signInSaveEvery {
		r.saver.MarkDirty(name)
	}
	return u, nil
}

// addUserLocked adds name with their loaded record to the relay's users
// (the Directory takes the record; the relay builds each auction's
// delivery state) and returns the products to acquire. applyConfig adds
// the configured users it loads, tokenUser a signed token's user.
func (r *Relay) addUserLocked(name string, rec users.Record) (*user, []int64) {
	u := newUser(name)
	u.stateKey, _ = r.dir.Restore(name, rec)
	var acquire []int64
	for _, a := range r.dir.Auctions(name) {
		m := newMonitored(a, u)
		u.auctions[a.ID] = m
		r.addMonitorLocked(m)
		acquire = append(acquire, a.ProductID)
	}
	r.users[name] = u
	return u, acquire
}

// dropUserLocked removes u from the relay's users and the fan-out's
// index, returning the products to release and the auctions that went,
// for their auto-bid state to be forgotten. applyConfig drops the users a
// reload no longer names, forgetStale those past user_retention.
func (r *Relay) dropUserLocked(u *user) (release []int64, gone []*monitored) {
	for _, a := range u.auctions {
		r.removeMonitorLocked(a)
		release = append(release, a.ProductID)
		gone = append(gone, a)
	}
	delete(r.users, u.name)
	delete(r.remote, u.name)
	return release, gone
}

// applyVerifier makes cfg's signed-token settings the ones in force; nil
// without a key. A config without them signs out the sockets signed in
// with a signed token, as one removing a user does that user's: the
// operator took signed tokens away. (New keys leave them be: rotation
// keeps the old key beside the new one, and each socket ends at its exp.)
func (r *Relay) applyVerifier(cfg *Config) error {
	if !cfg.JWT.Enabled() {
		if r.verifier.Swap(nil) != nil {
			r.mu.Lock()
			for c := range r.conns {
				if c.user != nil && !c.expires.IsZero() {
					r.deauthenticateLocked(c)
				}
			}
			r.mu.Unlock()
		}
		return nil
	}
	v, err := tokens.NewVerifier(cfg.JWT, r.now)
	if err != nil {
		return fmt.Errorf("wsrelay: %w", err)
	}
	r.verifier.Store(v)
	return nil
}

// expiryWatch is when the next signed-in socket's token expires, for the
// sweeper; guarded by Relay.mu, but for wake.
type expiryWatch struct {
	next time.Time     // zero: no socket signed in with an expiring token
	wake chan struct{} // an earlier expiry was noted
}

// noteExpiryLocked makes the sweeper close c at exp (zero: never).
func (r *Relay) noteExpiryLocked(c *conn, exp time.Time) {
	c.expires = exp
	if exp.IsZero() || (!r.expiry.next.IsZero() && !exp.Before(r.expiry.next)) {
		return
	}
	r.expiry.next = exp
	select {
	case r.expiry.wake <- struct{}{}:
	default:
	}
}

func (r *Relay) nextExpiry() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.expiry.next
}

// closeExpired closes, with 1008 "token expired", every signed-in socket
// whose token expired by now, and notes the next expiry.
func (r *Relay) closeExpired(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next time.Time
	for c := range r.conns {
		switch {
		case c.user == nil || c.expires.IsZero():
		case !now.Before(c.expires):
			c.expires = time.Time{}
			c.requestClose(websocket.ClosePolicyViolation, reasonTokenExpired)
		case next.IsZero() || c.expires.Before(next):
			next = c.expires
		}
	}
	r.expiry.next = next
}
