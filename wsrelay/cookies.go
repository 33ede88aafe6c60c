package wsrelay

import (
	"go.uber.org/zap"
)

// CookiesFor returns the synced Nellis cookies to fetch a product's
// snapshot with, and the key of the user state fetched with them: the
// users who monitor the product take turns (users.Directory.CookiesFor).
// "" means fetch anonymously. The cookies are a secret: never log them.
func (r *Relay) CookiesFor(productID int64) (owner, cookies string) {
	return r.dir.CookiesFor(productID)
}

// CookiesFailed sets aside the cookies the hub tagged owner: a snapshot
// fetched with them failed where an anonymous one worked. CookiesFor skips
// them until the user syncs cookies again (POST /api/auth).
func (r *Relay) CookiesFailed(productID int64, owner string) {
	if name := r.dir.CookiesFailed(owner); name != "" {
		r.log().Warn("a user's Nellis cookies failed on a snapshot; they are not used for snapshots until the user syncs them again",
			zap.String("user", name), zap.Int64("product_id", productID))
	}
}

// setCookies gives u new cookies and a new key for the user state fetched
// with them, so that state from the old ones (perhaps another Nellis
// account) is never shown as theirs. Callers hold r.mu (the Directory's
// lock is taken inside it), so a delivery sees the key change with the
// cookies.
func (r *Relay) setCookies(u *user, cookies string) {
	if key, ok := r.dir.SetCookies(u.name, cookies); ok {
		u.stateKey = key
	}
}

// cookiesOf is u's synced cookies (a secret), "" for none.
func (r *Relay) cookiesOf(u *user) string {
	return r.dir.Cookies(u.name).Cookies
}
