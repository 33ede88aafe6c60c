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

// userSnapshot is the user's record as it is now, for the saver: the
// Directory keeps what is saved (users.Directory.Record).
func (r *Relay) userSnapshot(name string) (users.Record, bool) { return r.dir.Record(name) }

// cookieKeyNow is the cookie key to seal with, nil without one.
func (r *Relay) cookieKeyNow() []byte {
	if k := r.cookieKey.Load(); k != nil {
		return *k
	}
	return nil
}
