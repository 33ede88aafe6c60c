package users

import (
	"slices"
	"time"
)

// Users known from signed tokens (package tokens) come and go: the token
// says who they are, and nothing configures them. Their account is made
// at their first sign-in (SignIn) and taken away (Forget) once they have
// not signed in for the retention period. A configured user of the same
// name is the same user: the operator's signing key vouches for the name
// as the Caddyfile does.

// SignIn notes that name signed in with a signed token at at, making
// their account if there is none (the first sign-in since the start; the
// caller restores their stored record). It returns the sign-in noted
// before (zero for none) and whether the account is new.
func (d *Directory) SignIn(name string, at time.Time) (prev time.Time, created bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.accounts[name]
	if a == nil {
		a = &account{fromToken: true, auctions: make(map[string]*Auction)}
		d.newKeyLocked(a)
		d.accounts[name] = a
		created = true
	}
	prev = a.signedIn
	if at.After(a.signedIn) {
		a.signedIn = at
	}
	return prev, created
}

// SetSignedIn restores name's last sign-in from their stored record when
// it is later than the one noted.
func (d *Directory) SetSignedIn(name string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a := d.accounts[name]; a != nil && at.After(a.signedIn) {
		a.signedIn = at
	}
}

// SignedIn returns name's last sign-in with a signed token, zero for
// none.
func (d *Directory) SignedIn(name string) time.Time {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if a := d.accounts[name]; a != nil {
		return a.signedIn
	}
	return time.Time{}
}

// Stale lists, sorted, the users known only from tokens whose last
// sign-in was before before.
func (d *Directory) Stale(before time.Time) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var names []string
	for name, a := range d.accounts {
		if a.fromToken && a.signedIn.Before(before) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Forget removes name if they are known only from tokens, and reports
// whether it did, with their auctions and their place in who monitors
// each product.
func (d *Directory) Forget(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.accounts[name]
	if a == nil || !a.fromToken {
		return false
	}
	for _, au := range a.auctions {
		d.unindexLocked(name, au)
	}
	delete(d.accounts, name)
	return true
}
