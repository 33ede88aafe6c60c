package wsrelay

import (
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/settings"
)

// TestAuthTimeout: a socket that does not sign in within AuthTimeout is
// closed with 1008 and a reason, parked or not (over plain TCP and TLS);
// a signed-in one stays; one a reload signs out gets AuthTimeout again.
func TestAuthTimeout(t *testing.T) {
	cfg := testConfig()
	// Long enough for the three sockets (one over TLS, one signed in)
	// to be set up and parked before the first one's runs out: with
	// 300 ms the plain socket was closed before the TLS handshake was
	// done on a loaded machine under -race, so three never parked.
	cfg.AuthTimeout = settings.Duration(2 * time.Second)
	f := newFixture(t, cfg, Options{})
	tlsSrv := newTLSServer(t, f)

	start := time.Now()
	idle := f.connect()
	idleTLS := dialWith(t, tlsSrv.dialer, tlsSrv.url, nil).greeted()
	signedIn := f.login(tokenAlice)
	if f.relay.tr.Polling() { // the idle poller parks all three
		waitParked(t, f.relay, 3)
	}
	for name, c := range map[string]*client{"plain": idle, "TLS": idleTLS} {
		ce := c.closeFrame()
		if ce.Code != websocket.ClosePolicyViolation || ce.Text != reasonAuthTimeout {
			t.Errorf("%s socket: closed with %d %q, want 1008 %q", name, ce.Code, ce.Text, reasonAuthTimeout)
		}
	}
	if took := time.Since(start); took < time.Duration(cfg.AuthTimeout) || took > time.Duration(cfg.AuthTimeout)+time.Second {
		t.Errorf("closed after %v, want about %v", took, cfg.AuthTimeout)
	}
	signedIn.roundTrip()

	// A reload that changes alice's token signs her socket out.
	cfg.Users = map[string]string{"alice": "alice-new-token", "bob": tokenBob}
	if err := f.relay.UpdateConfig(cfg); err != nil {
		t.Fatal(err)
	}
	signedOut := time.Now()
	signedIn.roundTrip()
	if ce := signedIn.closeFrame(); ce.Code != websocket.ClosePolicyViolation || ce.Text != reasonAuthTimeout {
		t.Errorf("signed-out socket: closed with %d %q", ce.Code, ce.Text)
	}
	if took := time.Since(signedOut); took < time.Duration(cfg.AuthTimeout) {
		t.Errorf("a signed-out socket was closed %v after, before its AuthTimeout", took)
	}
}

type tlsServer struct {
	dialer *websocket.Dialer
	url    string
}

func newTLSServer(t *testing.T, f *fixture) tlsServer {
	t.Helper()
	srv := httptest.NewTLSServer(f.mux())
	t.Cleanup(srv.Close)
	return tlsServer{
		dialer: &websocket.Dialer{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig},
		url:    "wss" + srv.URL[len("https"):] + "/ws",
	}
}

// fragmentHeader is a client's first frame header of a text message that
// goes on (FIN clear), masked with a zero key, for a payload of size.
func fragmentHeader(size int) []byte {
	h := []byte{websocket.TextMessage, 0x80 | 127}
	h = binary.BigEndian.AppendUint64(h, uint64(size))
	return append(h, 0, 0, 0, 0)
}

// TestUnauthenticatedReadLimit: before sign-in a message larger than
// MaxUnauthenticatedMessageSize closes the socket with 1009 at its
// header; after sign-in MaxMessageSize applies.
func TestUnauthenticatedReadLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxUnauthenticatedMessageSize = 1 << 10
	f := newFixture(t, cfg, Options{})
	stranger := f.connect()
	if _, err := stranger.ws.NetConn().Write(fragmentHeader(64 << 10)); err != nil {
		t.Fatal(err)
	}
	if code := stranger.expectClose(); code != websocket.CloseMessageTooBig {
		t.Errorf("a 64 KiB first fragment before sign-in: closed with %d, want 1009", code)
	}
	// Within the limit is fine, and so is more once signed in.
	c := f.connect()
	c.sendRaw(`{"type":"ping","requestId":"` + strings.Repeat("x", 900) + `"}`)
	c.expectType("pong")
	c.authenticate(tokenAlice)
	c.sendRaw(`{"type":"ping","requestId":"` + strings.Repeat("x", 64<<10) + `"}`)
	c.expectType("pong")
}

// TestMessageTimeout: a message begun and never finished is closed with
// 1008 after MessageTimeout, though the client keeps pinging between its
// fragments (each ping pushes the read deadline back), and whether or not
// the socket signed in.
func TestMessageTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.MessageTimeout = settings.Duration(300 * time.Millisecond)
	cfg.PingInterval = settings.Duration(200 * time.Millisecond) // so pings matter
	f := newFixture(t, cfg, Options{})
	for _, signIn := range []bool{false, true} {
		c := f.connect()
		if signIn {
			c.authenticate(tokenAlice)
		}
		raw := c.ws.NetConn()
		start := time.Now()
		if _, err := raw.Write(append(fragmentHeader(100), make([]byte, 100)...)); err != nil {
			t.Fatal(err)
		}
		stop := keepPinging(raw, 50*time.Millisecond)
		ce := c.closeFrame()
		close(stop)
		if ce.Code != websocket.ClosePolicyViolation || ce.Text != reasonMessageTimeout {
			t.Errorf("signed in %v: closed with %d %q, want 1008 %q", signIn, ce.Code, ce.Text, reasonMessageTimeout)
		}
		if took := time.Since(start); took < time.Duration(cfg.MessageTimeout) || took > time.Duration(cfg.MessageTimeout)+time.Second {
			t.Errorf("signed in %v: closed after %v, want about %v", signIn, took, cfg.MessageTimeout)
		}
	}
	// A message that takes a while but less than the deadline is read.
	c := f.login(tokenBob)
	raw := c.ws.NetConn()
	msg := `{"type":"ping","requestId":"slow"}`
	if _, err := raw.Write(append([]byte{websocket.TextMessage, 0x80 | 5, 0, 0, 0, 0}, msg[:5]...)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(cfg.MessageTimeout / 2))
	if _, err := raw.Write(clientFrame(0, msg[5:])); err != nil { // continuation, FIN
		t.Fatal(err)
	}
	c.expectType("pong")
}

// keepPinging sends a ping on raw every interval until stop is closed.
func keepPinging(raw net.Conn, every time.Duration) chan<- struct{} {
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := raw.Write(clientFrame(websocket.PingMessage, "p")); err != nil {
					return
				}
			}
		}
	}()
	return stop
}
