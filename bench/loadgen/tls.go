package loadgen

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// clientTLS is the clients' TLS configuration for a wss:// URL: the
// certificates in caFile as the only roots, so the bench verifies the
// gateway's certificate as an extension would instead of skipping the
// check. An empty caFile leaves Go's default (the system's roots).
func clientTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca: %s holds no PEM certificate", caFile)
	}
	// Sessions are not resumed: each client is a separate extension,
	// whose handshake the gateway pays in full.
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}
