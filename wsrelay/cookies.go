package wsrelay

// CookiesFor returns the synced Nellis cookies to fetch a product's
// snapshot with: those of a user who monitors it, so the snapshot carries
// that user's state (isWinning, nextBid). Users are tried in name order so
// the choice is stable between polls. "" means fetch anonymously. The
// result is a secret: never log it.
func (r *Relay) CookiesFor(productID int64) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if u := r.cookieOwnerLocked(productID); u != nil {
		return u.cookies
	}
	return ""
}

// cookieOwnerLocked is the user whose cookies CookiesFor picks, nil for
// none. Callers hold r.mu.
func (r *Relay) cookieOwnerLocked(productID int64) *user {
	var best *user
	for a := range r.monitors[productID] {
		u := a.owner
		if u == nil || u.cookies == "" {
			continue
		}
		if best == nil || u.name < best.name {
			best = u
		}
	}
	return best
}
