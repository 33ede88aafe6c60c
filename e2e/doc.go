// Package e2e holds end-to-end tests that drive the gateway as people use
// it: a real Caddy serving the demo and a real headless Chromium (Debian's
// /usr/bin/chromium, installed by `make test` when missing) looking at it.
package e2e
