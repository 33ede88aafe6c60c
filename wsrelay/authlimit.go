package wsrelay

import (
	"strings"
	"time"
)

// Limits on signing in. A token is the only secret between the internet
// and a bidder's money, so guessing one is limited twice: each socket may
// fail authenticate a few times (Config.AuthFailures) before it is
// closed, and each client address (addressKey) has a budget of failures a
// minute (Config.AuthFailuresPerMinute) shared by its sockets and its REST
// calls, so that opening more sockets buys no more guesses.

// Close reasons the extension logs, and the reply to a refused sign-in.
const (
	reasonAuthTimeout    = "authentication timeout"
	reasonAuthFailures   = "too many failed authentication attempts"
	reasonMessageTimeout = "message timeout"
	errAuthBudgetSpent   = "Too many failed authentication attempts from this address; try again later"
)

// presentedToken is the token a client presented, on the socket or in a
// REST Authorization header, with surrounding whitespace removed; false
// when nothing is left. Both sides use it, so a token is accepted or
// refused the same way on each.
func presentedToken(raw string) (string, bool) {
	token := strings.TrimSpace(raw)
	return token, token != ""
}

// authAllowed reports whether the address may have a token checked: its
// failed-authentication budget is not spent. It takes nothing: only a
// failure spends (authFailed), so any number of valid sign-ins in flight
// from one address (an office behind one NAT, every socket of a shared
// token) never count against it. Guesses in flight when the budget runs
// out may each still be checked: at most one per unauthenticated socket
// (max_unauthenticated_per_address) and per REST request then open, and
// each finishes in microseconds, so the budget holds within that.
func (r *Relay) authAllowed(addr string) bool {
	cfg := r.config()
	perSecond := float64(cfg.AuthFailuresPerMinute) / 60
	r.ipMu.Lock()
	defer r.ipMu.Unlock()
	b := r.authBudgets[addr]
	return b == nil || b.has(r.now(), perSecond, cfg.AuthFailuresPerMinute)
}

// authFailed spends one of the address's failed-authentication budget.
func (r *Relay) authFailed(addr string) {
	cfg := r.config()
	perSecond := float64(cfg.AuthFailuresPerMinute) / 60
	r.ipMu.Lock()
	defer r.ipMu.Unlock()
	b := r.authBudgets[addr]
	if b == nil {
		b = &bucket{}
		r.authBudgets[addr] = b
	}
	b.allow(r.now(), perSecond, cfg.AuthFailuresPerMinute)
}

// authRetryAfter is the Retry-After of a refused sign-in, in whole
// seconds: about when the budget has one attempt again.
func (r *Relay) authRetryAfter() time.Duration {
	every := time.Minute / time.Duration(r.config().AuthFailuresPerMinute)
	return max(time.Second, (every + time.Second - 1).Truncate(time.Second))
}
