package benchcert

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"testing"
	"time"
)

// The generated pair serves TLS on 127.0.0.1 that a client trusting only
// the certificate file verifies, by IP and by name; the key is private to
// its owner.
func TestWriteServesVerifiableTLS(t *testing.T) {
	f, err := Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(f.Key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", st.Mode(), err)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if left := time.Until(leaf.NotAfter); left < time.Hour || left > 25*time.Hour {
		t.Errorf("certificate valid for %s more; want about a day", left)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("ok"))
			c.Close()
		}
	}()
	pem, _ := os.ReadFile(f.Cert)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	for _, name := range []string{"127.0.0.1", "localhost"} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: name})
		if err != nil {
			t.Fatalf("dial as %s: %v", name, err)
		}
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) != "ok" {
			t.Errorf("as %s read %q", name, b)
		}
	}
	// Another run's certificate is not trusted.
	other, err := Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, _ := os.ReadFile(other.Cert)
	strangers := x509.NewCertPool()
	strangers.AppendCertsFromPEM(otherPEM)
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: strangers, ServerName: "127.0.0.1"}); err == nil {
		c.Close()
		t.Error("a client trusting another run's certificate completed the handshake")
	}
	ln.Close()
	<-served
}
