package users

import (
	"crypto/sha256"
	"crypto/subtle"
	"slices"
	"sync"
)

// Directory is the set of configured users and their tokens, and the one
// place a presented token is checked. Only each token's SHA-256 is kept.
// Safe for concurrent use.
//
// Its lock is a leaf: a caller may hold its own locks (the relay's
// interestMu and mu, in that order) when it calls a Directory method, and
// nothing is called back under it.
type Directory struct {
	mu     sync.RWMutex
	hashes map[string][sha256.Size]byte // by user name
}

// NewDirectory returns a directory without users.
func NewDirectory() *Directory {
	return &Directory{hashes: make(map[string][sha256.Size]byte)}
}

// Authenticate returns the name of the user whose token this is, "" for
// none, and whether any user is configured at all. Every user's hash is
// compared in constant time, so timing tells nothing about any token.
func (d *Directory) Authenticate(token string) (name string, configured bool) {
	h := sha256.Sum256([]byte(token))
	d.mu.RLock()
	defer d.mu.RUnlock()
	for candidate, hash := range d.hashes {
		if subtle.ConstantTimeCompare(h[:], hash[:]) == 1 {
			name = candidate
		}
	}
	return name, len(d.hashes) > 0
}

// Has reports whether name is a configured user.
func (d *Directory) Has(name string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, ok := d.hashes[name]
	return ok
}

// Holds reports whether token is name's token now (false for a user not
// configured).
func (d *Directory) Holds(name, token string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	h, ok := d.hashes[name]
	return ok && h == sha256.Sum256([]byte(token))
}

// Names lists the configured users, sorted.
func (d *Directory) Names() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	names := make([]string, 0, len(d.hashes))
	for name := range d.hashes {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Set makes tokens (user name to token) the configured users. It returns,
// sorted, the users who were configured before and whose token changed
// (changed) or who are no longer configured (gone): their signed-in
// sessions no longer hold.
func (d *Directory) Set(tokens map[string]string) (changed, gone []string) {
	hashes := make(map[string][sha256.Size]byte, len(tokens))
	for name, token := range tokens {
		hashes[name] = sha256.Sum256([]byte(token))
	}
	d.mu.Lock()
	for name, old := range d.hashes {
		h, ok := hashes[name]
		switch {
		case !ok:
			gone = append(gone, name)
		case h != old:
			changed = append(changed, name)
		}
	}
	d.hashes = hashes
	d.mu.Unlock()
	slices.Sort(changed)
	slices.Sort(gone)
	return changed, gone
}
