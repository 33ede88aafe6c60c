package wsrelay

import (
	"github.com/nellis-edge/gateway/users"
)

// QuarantinedRecord is a user's stored record that could not be read
// when the user was loaded (users.QuarantinedRecord).
type QuarantinedRecord = users.QuarantinedRecord

// Quarantined lists the users' records set aside since the relay started,
// oldest first.
func (r *Relay) Quarantined() []QuarantinedRecord {
	if r.store == nil {
		return nil
	}
	return r.store.Quarantined()
}

// userSnapshot is the user's record as it is now, for the saver.
func (r *Relay) userSnapshot(name string) (users.Record, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u, ok := r.users[name]
	if !ok {
		return users.Record{}, false
	}
	c := r.dir.Cookies(name)
	rec := users.Record{Auctions: make([]Auction, 0, len(u.auctions)), Cookies: c.Cookies, Unopened: c.Unopened,
		SignedIn: r.dir.SignedIn(name)}
	for _, a := range u.auctions {
		rec.Auctions = append(rec.Auctions, a.Auction)
	}
	return rec, true
}

// cookieKeyNow is the cookie key to seal with, nil without one.
func (r *Relay) cookieKeyNow() []byte {
	if k := r.cookieKey.Load(); k != nil {
		return *k
	}
	return nil
}
