package wsrelay

import (
	"cmp"
	"slices"
	"strconv"

	"go.uber.org/zap"
)

// CookiesFor returns the synced Nellis cookies to fetch a product's
// snapshot with: those of a user who monitors it, so the snapshot also
// carries that user's own state (isWinning, nextBid), which reaches that
// user alone. owner is the opaque key the hub tags that state with
// (hub.UserState.Owner). The users whose cookies are usable take turns,
// in name order, so each one's state is fetched in turn: one request per
// poll serves the shared state and one user's. Cookies that failed
// (CookiesFailed) are skipped until the user syncs new ones. "" means
// fetch anonymously. The cookies are a secret: never log them.
func (r *Relay) CookiesFor(productID int64) (owner, cookies string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var users []*user
	for a := range r.monitors[productID] {
		u := a.owner
		if u != nil && u.cookies != "" && !u.cookiesFailed && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		return "", ""
	}
	slices.SortFunc(users, func(x, y *user) int { return cmp.Compare(x.name, y.name) })
	r.turnMu.Lock()
	turn := r.turns[productID]
	r.turns[productID] = turn + 1
	r.turnMu.Unlock()
	u := users[turn%uint64(len(users))]
	return u.stateKey, u.cookies
}

// CookiesFailed sets aside the cookies the hub tagged owner: a snapshot
// fetched with them failed where an anonymous one worked. CookiesFor skips
// them until the user syncs cookies again (POST /api/auth).
func (r *Relay) CookiesFailed(productID int64, owner string) {
	r.mu.Lock()
	var name string
	for _, u := range r.users {
		if u.stateKey == owner && u.cookies != "" && !u.cookiesFailed {
			u.cookiesFailed = true
			name = u.name
			break
		}
	}
	r.mu.Unlock()
	if name != "" {
		r.log().Warn("a user's Nellis cookies failed on a snapshot; they are not used for snapshots until the user syncs them again",
			zap.String("user", name), zap.Int64("product_id", productID))
	}
}

// setCookies gives u new cookies and a new key for the user state fetched
// with them, so that state from the old ones (perhaps another Nellis
// account) is never shown as theirs. Callers hold r.mu or own u.
func (r *Relay) setCookies(u *user, cookies string) {
	u.cookies = cookies
	u.cookiesFailed = false
	u.stateKey = strconv.FormatUint(r.cookieGen.Add(1), 36)
}
