// Package benchcert makes the benchmark's TLS certificate: one self-signed
// ECDSA P-256 certificate for 127.0.0.1 and localhost, generated at the
// start of a run into the run's scratch directory. The gateway loads it
// with `tls cert.pem key.pem`, the floor server with -cert and -key, and
// the load generator trusts that same file as its only root (-ca), so the
// clients verify the server as an extension would. Nothing is written to
// the user's home or trust store, as Caddy's `tls internal` would (its
// local CA's state and an attempt to install its root), and every run
// starts from the same kind of certificate.
package benchcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files are the paths of a generated certificate and its private key, PEM.
type Files struct {
	Cert string
	Key  string
}

// validity covers the longest run (about half an hour) with room to spare;
// a short life keeps a leaked scratch key worthless.
const validity = 24 * time.Hour

// Write generates the certificate and key into dir as cert.pem and
// key.pem (the key mode 0600). P-256 is what browsers and Caddy's own
// certificates use, so the handshake costs what a deployment's would.
func Write(dir string) (Files, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return Files{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "nellis-edge bench"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		// Its own root: the clients trust this very certificate.
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Files{}, fmt.Errorf("certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Files{}, err
	}
	f := Files{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(f.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return Files{}, err
	}
	if err := os.WriteFile(f.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return Files{}, err
	}
	return f, nil
}
