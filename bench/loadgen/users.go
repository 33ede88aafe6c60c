package loadgen

import "strconv"

// The bench gives every client a user of its own, as every extension has:
// the gateway encodes a change once per user, so one user shared by all
// clients would measure a cheaper gateway than production runs, and would
// push every startMonitoring to every socket of that user. The shared-token
// scenarios (Options.Users) measure exactly that deployment: the old
// backend's one AUTH_TOKEN for every extension.

// UserName is the name of client i's user in the bench Caddyfile.
func UserName(i int) string { return "u" + strconv.Itoa(i) }

// Token is client i's token, derived from the run's random secret so that
// the driver and every load generator agree without a list of tokens.
func Token(secret string, i int) string { return secret + "-" + strconv.Itoa(i) }

// UserIndex is the user of the load generator's client i, given its first
// user number and how many users the clients share (0: one user each).
func UserIndex(first, i, users int) int {
	if users <= 0 {
		return first + i
	}
	return (first + i) % users
}
