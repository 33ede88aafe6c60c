// Package tokens verifies the signed tokens (JWTs) an operator's own auth
// service issues to bidders, so that a service for thousands of bidders
// needs no Caddyfile line per user: the token's signature proves who the
// user is, its exp ends the sign-in. It knows nothing of Caddy or of the
// relay: the module builds a Verifier from Config, the relay calls Verify
// with the token a client presented and gets the user's name, a safe
// storage key.
//
// Only algorithms that match a configured key are accepted: HS256, HS384
// and HS512 with the HMAC key, RS* and PS* with an RSA key, ES256, ES384
// or ES512 with an ECDSA key on the matching curve, EdDSA with an Ed25519
// key. "none" is never accepted, nor an HMAC token checked against a
// public key. Each public key of the type is tried in turn, so a new key
// can be added beside the old one while tokens signed with either are in
// use (rotation). The parsing and the signature checks are
// github.com/golang-jwt/jwt/v5's.
//
// Errors are the package's sentinels (ErrExpired, ErrAlgorithm, ...), for
// errors.Is, and never include the token.
package tokens
