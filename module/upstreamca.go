package module

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"
	"sync"

	"github.com/nellis-edge/gateway/sseupstream"
)

// transports holds the transport toward Nellis for each set of trusted
// authorities (keyed by the upstream_ca file's hash, "" for the system's),
// so a reload that keeps the setting keeps the connections: over h2 a few
// connections carry every stream, and a new transport per config would
// leave each reload's streams on connections of their own.
var transports = struct {
	sync.Mutex
	byCA map[[sha256.Size]byte]*sseupstream.Transport
}{byCA: map[[sha256.Size]byte]*sseupstream.Transport{}}

// loadUpstreamCA reads a PEM file of CA certificates and returns the
// system's roots plus them. It names the file, never its content.
func loadUpstreamCA(path string) (*x509.CertPool, []byte, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("upstream_ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, nil, fmt.Errorf("upstream_ca: no PEM certificate in %s", path)
	}
	return pool, pemBytes, nil
}

// upstreamTransport is the transport streams and polls share: HTTP/2 to
// Nellis when it offers it, trusting upstream_ca besides the system's
// roots when set.
func (a *App) upstreamTransport() (*sseupstream.Transport, error) {
	var key [sha256.Size]byte
	var pool *x509.CertPool
	if a.UpstreamCA != "" {
		p, pemBytes, err := loadUpstreamCA(a.UpstreamCA)
		if err != nil {
			return nil, fmt.Errorf("nellis: %w", err)
		}
		pool, key = p, sha256.Sum256(pemBytes)
	}
	transports.Lock()
	defer transports.Unlock()
	t := transports.byCA[key]
	if t == nil {
		t = sseupstream.NewTransport(pool)
		transports.byCA[key] = t
	}
	return t, nil
}
