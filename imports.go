// Package gateway is Nellis Edge, a real-time edge gateway for Nellis
// Auction built as Caddy modules. Importing it registers every module, so
// `xcaddy build --with github.com/nellis-edge/gateway` brings them all.
package gateway

import (
	// The Caddy modules: the nellis app and its HTTP handlers.
	_ "github.com/nellis-edge/gateway/module"
)
