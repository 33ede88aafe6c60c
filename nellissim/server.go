package nellissim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ServeOptions say how a Server offers the simulator.
type ServeOptions struct {
	// Addr is the address to listen on. Default: 127.0.0.1:0.
	Addr string
	// TLS serves https with a certificate generated for 127.0.0.1 and
	// localhost (CertPEM is the one to trust), offering h2 and http/1.1 by
	// ALPN as Nellis's CDN does. Default: plain http/1.1.
	TLS bool
	// HTTP1Only, with TLS, offers http/1.1 alone: a Nellis without h2.
	HTTP1Only bool
	// MaxConcurrentStreams is the h2 SETTINGS_MAX_CONCURRENT_STREAMS of
	// each connection. Default: Go's, 250.
	MaxConcurrentStreams int
}

// Server serves a Simulator on a listener of its own and counts the TCP
// connections its clients open: how many upstream connections a gateway
// uses is one of the things the simulator is there to show. It does not
// own the Simulator: close the Simulator first (its streams end), then the
// Server.
type Server struct {
	// URL is the base URL, http://… or https://….
	URL string
	// CertPEM is the server's self-signed certificate in PEM, when TLS:
	// what a client must trust. Nil otherwise.
	CertPEM []byte

	srv      *http.Server
	served   chan error
	accepted atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open, not hijacked
}

// Serve starts serving s as opts say.
func (s *Simulator) Serve(opts ServeOptions) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &Server{served: make(chan error, 1), conns: make(map[net.Conn]struct{})}
	srv.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         srv.track,
		ErrorLog:          quietLog(),
	}
	if opts.MaxConcurrentStreams > 0 {
		srv.srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: opts.MaxConcurrentStreams}
	}
	scheme := "http"
	if opts.TLS {
		scheme = "https"
		cert, certPEM, err := selfSignedCert()
		if err != nil {
			ln.Close()
			return nil, err
		}
		srv.CertPEM = certPEM
		var protos http.Protocols
		protos.SetHTTP1(true)
		protos.SetHTTP2(!opts.HTTP1Only)
		srv.srv.Protocols = &protos
		srv.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		go func() { srv.served <- srv.srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { srv.served <- srv.srv.Serve(ln) }()
	}
	srv.URL = scheme + "://" + ln.Addr().String()
	return srv, nil
}

func (srv *Server) track(c net.Conn, state http.ConnState) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	switch state {
	case http.StateNew:
		srv.accepted.Add(1)
		srv.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(srv.conns, c)
	}
}

// Accepted is how many TCP connections the server has accepted.
func (srv *Server) Accepted() int64 { return srv.accepted.Load() }

// Open is how many TCP connections are open now.
func (srv *Server) Open() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.conns)
}

// DropConnections closes every open TCP connection at once, as a failing
// load balancer would: every stream and request on them breaks. It returns
// how many it closed.
func (srv *Server) DropConnections() int {
	srv.mu.Lock()
	conns := make([]net.Conn, 0, len(srv.conns))
	for c := range srv.conns {
		conns = append(conns, c)
	}
	srv.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

// RootCAs is a pool holding CertPEM, for a client's tls.Config; nil
// without TLS.
func (srv *Server) RootCAs() *x509.CertPool {
	if srv.CertPEM == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CertPEM)
	return pool
}

// Close stops listening and closes every connection, then waits for the
// server's loop to end. Close the Simulator first, so no stream handler is
// left writing.
func (srv *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.srv.Close()
	}
	if served := <-srv.served; !errors.Is(served, http.ErrServerClosed) && err == nil {
		err = served
	}
	return err
}

// GenerateCertificate makes a certificate for 127.0.0.1, ::1 and
// localhost that is its own authority, valid for a day, and its ECDSA key,
// both in PEM: for serving a simulator over TLS elsewhere, such as a Caddy
// site with `tls <cert> <key>`, with the certificate as the gateway's
// upstream_ca.
func GenerateCertificate() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "nellis simulator"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("simulator certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("simulator key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// selfSignedCert is GenerateCertificate's pair for a tls.Config, and the
// certificate in PEM.
func selfSignedCert() (tls.Certificate, []byte, error) {
	certPEM, keyPEM, err := GenerateCertificate()
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}

// quietLog drops the server's own log lines (TLS handshake errors of
// clients that hang up, connections a test drops): they are expected here.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
