package users

import (
	"crypto/sha256"
	"crypto/subtle"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Directory is the set of configured users and what the gateway keeps of
// each apart from their sockets: the token (only its SHA-256), the synced
// Nellis cookies with the key their user state is tagged with, the
// auctions each one monitors with their configs (monitors.go), and so who
// monitors each product. It is the one place a presented token is
// checked; it chooses whose cookies fetch a product's snapshot
// (CookiesFor), lists who auto-bids on a product (AutoBidders) and gives
// a user's record to save (Record). Safe for concurrent use.
//
// Its lock is a leaf: a caller may hold its own locks (the relay's
// interestMu and mu, in that order) when it calls a Directory method, and
// nothing is called back under it.
type Directory struct {
	mu       sync.RWMutex
	accounts map[string]*account
	// products counts each user's monitored auctions by product (an
	// index of the accounts' auctions); a product's entry goes with its
	// last monitor.
	products map[int64]*product
	keyGen   uint64 // numbers the state keys (SetCookies)
}

// account is one configured user's entry; guarded by Directory.mu.
type account struct {
	hash    [sha256.Size]byte
	cookies string // secret: never logged
	// stateKey tags the user state fetched with these cookies
	// (hub.UserState.Owner); it changes with the cookies.
	stateKey string
	// failed: a snapshot failed with these cookies; they are not used for
	// snapshots until the user syncs new ones.
	failed bool
	// unopened are the stored sealed cookies the current cookie_key
	// cannot open, written back unchanged (Record.Unopened).
	unopened string
	// left holds the products the user stopped watching, and when (fair
	// use: they count while their feeds linger; see Lingering).
	left map[int64]time.Time
	// fromToken: known only from a signed token (SignIn), not configured:
	// no hash, and Set leaves the account alone.
	fromToken bool
	// signedIn is the last sign-in with a signed token (zero for none).
	signedIn time.Time
	// auctions are the auctions the user monitors, by id (monitors.go);
	// each is replaced whole, never changed in place.
	auctions map[string]*Auction
}

// product is who monitors one product.
type product struct {
	users map[string]int // monitored auctions, by user
	// autoBid holds the product's auctions with auto-bid on, so that the
	// engine's question (AutoBidders), asked at every startMonitoring,
	// costs what it answers and not every watcher's auctions: 10,000
	// users of ten lots each made setup quadratic.
	autoBid map[userAuction]struct{}
	// turn counts the snapshots fetched with users' cookies, to take
	// turns (CookiesFor).
	turn uint64
}

// NewDirectory returns a directory without users.
func NewDirectory() *Directory {
	return &Directory{accounts: make(map[string]*account), products: make(map[int64]*product)}
}

// Authenticate returns the name of the user whose token this is, "" for
// none, and whether any user is configured at all. Every user's hash is
// compared in constant time, so timing tells nothing about any token.
func (d *Directory) Authenticate(token string) (name string, configured bool) {
	h := sha256.Sum256([]byte(token))
	d.mu.RLock()
	defer d.mu.RUnlock()
	for candidate, a := range d.accounts {
		if !a.fromToken && subtle.ConstantTimeCompare(h[:], a.hash[:]) == 1 {
			name = candidate
		}
	}
	return name, len(d.accounts) > 0
}

// Has reports whether name is a configured user.
func (d *Directory) Has(name string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	a, ok := d.accounts[name]
	return ok && !a.fromToken
}

// Holds reports whether token is name's token now (false for a user not
// configured).
func (d *Directory) Holds(name, token string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	a, ok := d.accounts[name]
	return ok && a.hash == sha256.Sum256([]byte(token))
}

// Names lists the configured users, sorted.
func (d *Directory) Names() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	names := make([]string, 0, len(d.accounts))
	for name, a := range d.accounts {
		if a.fromToken {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Set makes tokens (user name to token) the configured users. A user who
// stays keeps their cookies and auctions; a new one starts without
// (Restore gives them their saved ones); a removed one's are forgotten. It returns,
// sorted, the users who were configured before and whose token changed
// (changed) or who are no longer configured (gone): their signed-in
// sessions no longer hold.
func (d *Directory) Set(tokens map[string]string) (changed, gone []string) {
	d.mu.Lock()
	for name, a := range d.accounts {
		token, ok := tokens[name]
		switch {
		case a.fromToken && !ok: // not the config's to remove
		case a.fromToken: // configured now: the token is theirs too
			a.fromToken, a.hash = false, sha256.Sum256([]byte(token))
		case !ok:
			gone = append(gone, name)
			for _, au := range a.auctions {
				d.unindexLocked(name, au)
			}
			delete(d.accounts, name)
		case a.hash != sha256.Sum256([]byte(token)):
			changed = append(changed, name)
			a.hash = sha256.Sum256([]byte(token))
		}
	}
	for name, token := range tokens {
		if _, ok := d.accounts[name]; !ok {
			a := &account{hash: sha256.Sum256([]byte(token)), auctions: make(map[string]*Auction)}
			d.newKeyLocked(a)
			d.accounts[name] = a
		}
	}
	d.mu.Unlock()
	slices.Sort(changed)
	slices.Sort(gone)
	return changed, gone
}

func (d *Directory) newKeyLocked(a *account) {
	d.keyGen++
	a.stateKey = strconv.FormatUint(d.keyGen, 36)
}

// SetCookies gives name new cookies and a new key for the user state
// fetched with them (returned), so that state from the old ones (perhaps
// another Nellis account) is never shown as theirs; cookies that failed
// before are forgotten. "" and false for a user not configured.
func (d *Directory) SetCookies(name, cookies string) (stateKey string, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.accounts[name]
	if a == nil {
		return "", false
	}
	a.cookies, a.failed = cookies, false
	d.newKeyLocked(a)
	return a.stateKey, true
}

// Restore gives name what their saved record holds: its cookies
// (SetCookies), the sealed cookies that could not be opened (Unopened),
// kept to write back unchanged, and its auctions, which replace any the
// user has.
func (d *Directory) Restore(name string, rec Record) (stateKey string, ok bool) {
	stateKey, ok = d.SetCookies(name, rec.Cookies)
	if ok {
		d.mu.Lock()
		if a := d.accounts[name]; a != nil {
			a.unopened = rec.Unopened
			d.setAuctionsLocked(name, a, rec.Auctions)
		}
		d.mu.Unlock()
	}
	return stateKey, ok
}

// UserCookies is what the Directory keeps of one user's cookies.
type UserCookies struct {
	Cookies  string // synced, in use; a secret
	StateKey string // tags the user state fetched with Cookies
	Unopened string // sealed cookies no key could open, kept to write back
}

// Cookies returns what name has of cookies; zero for a user not
// configured.
func (d *Directory) Cookies(name string) UserCookies {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if a := d.accounts[name]; a != nil {
		return UserCookies{Cookies: a.cookies, StateKey: a.stateKey, Unopened: a.unopened}
	}
	return UserCookies{}
}

// Reopen opens, with a cookie_key a reload brought, the stored cookies
// that earlier keys could not, and returns, sorted, whose it opened. The
// state key stays: the cookies are the ones saved, not new ones.
func (d *Directory) Reopen(key []byte) (opened []string) {
	if key == nil {
		return nil
	}
	d.mu.Lock()
	for name, a := range d.accounts {
		if a.unopened == "" || a.cookies != "" {
			continue
		}
		if cookies, err := OpenCookies(key, name, a.unopened); err == nil {
			a.cookies, a.unopened = cookies, ""
			opened = append(opened, name)
		}
	}
	d.mu.Unlock()
	slices.Sort(opened)
	return opened
}

// userAuction names one user's auction.
type userAuction struct{ user, auction string }

// indexLocked notes that name monitors a, one more auction of its
// product.
func (d *Directory) indexLocked(name string, a *Auction) {
	p := d.products[a.ProductID]
	if p == nil {
		p = &product{users: make(map[string]int), autoBid: make(map[userAuction]struct{})}
		d.products[a.ProductID] = p
	}
	p.users[name]++
	if a.Config.AutoBid {
		p.autoBid[userAuction{name, a.ID}] = struct{}{}
	}
}

// unindexLocked notes that name no longer monitors a, one auction of its
// product less.
func (d *Directory) unindexLocked(name string, a *Auction) {
	p := d.products[a.ProductID]
	if p == nil {
		return
	}
	delete(p.autoBid, userAuction{name, a.ID})
	if p.users[name]--; p.users[name] <= 0 {
		delete(p.users, name)
	}
	if len(p.users) == 0 {
		delete(d.products, a.ProductID)
	}
}

// Monitored reports whether a user monitors productID.
func (d *Directory) Monitored(productID int64) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.products[productID] != nil
}

// CookiesFor returns the synced Nellis cookies to fetch a product's
// snapshot with: those of a user who monitors it, so the snapshot also
// carries that user's own state (isWinning, nextBid), which reaches that
// user alone. owner is the opaque key that state is tagged with
// (hub.UserState.Owner). The users whose cookies are usable take turns,
// in name order, so each one's state is fetched in turn: one request per
// poll serves the shared state and one user's. Cookies that failed
// (CookiesFailed) are skipped until the user syncs new ones. "" means
// fetch anonymously. The cookies are a secret: never log them.
func (d *Directory) CookiesFor(productID int64) (owner, cookies string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.products[productID]
	if p == nil {
		return "", ""
	}
	var names []string
	for name := range p.users {
		if a := d.accounts[name]; a != nil && a.cookies != "" && !a.failed {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", ""
	}
	slices.Sort(names)
	a := d.accounts[names[p.turn%uint64(len(names))]]
	p.turn++
	return a.stateKey, a.cookies
}

// CookiesFailed sets aside the cookies tagged owner: a snapshot fetched
// with them failed where an anonymous one worked. CookiesFor skips them
// until the user syncs cookies again. It returns whose they were, "" when
// they are gone or set aside already.
func (d *Directory) CookiesFailed(owner string) (name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for candidate, a := range d.accounts {
		if a.stateKey == owner && a.cookies != "" && !a.failed {
			a.failed = true
			return candidate
		}
	}
	return ""
}

// Left notes that name stopped watching products at at (by one socket or
// auction; they may still watch them otherwise).
func (d *Directory) Left(name string, at time.Time, products ...int64) {
	if len(products) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.accounts[name]
	if a == nil {
		return
	}
	if a.left == nil {
		a.left = make(map[int64]time.Time)
	}
	for _, id := range products {
		a.left[id] = at
	}
}

// Lingering lists the products name left less than linger before now: a
// product left counts against the user's product limit while its feed
// stays open upstream, so churn through ever new products cannot keep
// more feeds open than the limit says. Older entries are forgotten.
func (d *Directory) Lingering(name string, now time.Time, linger time.Duration) []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.accounts[name]
	if a == nil {
		return nil
	}
	var out []int64
	for id, at := range a.left {
		if now.Sub(at) >= linger {
			delete(a.left, id)
			continue
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
