package wsrelay

import (
	"strconv"

	"go.uber.org/zap"
)

// CookiesFor returns the synced Nellis cookies to fetch a product's
// snapshot with: those of a user who monitors it, so the snapshot also
// carries that user's own state (isWinning, nextBid), which reaches that
// user alone. owner is the opaque key the hub tags that state with
// (hub.UserState.Owner). Users are tried in name order so the choice is
// stable between polls; cookies that failed (CookiesFailed) are skipped
// until the user syncs new ones. "" means fetch anonymously. The cookies
// are a secret: never log them.
func (r *Relay) CookiesFor(productID int64) (owner, cookies string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if u := r.cookieOwnerLocked(productID); u != nil {
		return u.stateKey, u.cookies
	}
	return "", ""
}

// cookieOwnerLocked is the user whose cookies CookiesFor picks, nil for
// none. Callers hold r.mu.
func (r *Relay) cookieOwnerLocked(productID int64) *user {
	var best *user
	for a := range r.monitors[productID] {
		u := a.owner
		if u == nil || u.cookies == "" || u.cookiesFailed {
			continue
		}
		if best == nil || u.name < best.name {
			best = u
		}
	}
	return best
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
