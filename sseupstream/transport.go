package sseupstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// HTTP/2 settings of NewTransport. Over h2 one TCP connection carries up
// to the server's SETTINGS_MAX_CONCURRENT_STREAMS streams (Go's server
// allows 250), so a connection that dies silently takes hundreds of
// streams with it, and the stall watchdog's reconnects would go straight
// back onto it: the transport pings an idle connection and drops it when
// no answer comes. A stream that pings every second keeps its connection
// busy, so the ping only ever goes to a connection that has gone quiet.
const (
	// h2SendPingTimeout: a connection with no frame for this long is
	// pinged.
	h2SendPingTimeout = 5 * time.Second
	// h2PingTimeout: no answer within this closes the connection, failing
	// every stream on it at once.
	h2PingTimeout = 5 * time.Second
	// h2StreamWindow is each stream's receive window. Go's default is
	// 4 MiB per stream against 1 GiB per connection; a stream here carries
	// events of a few hundred bytes a second, and a smaller window bounds
	// what one stream whose reader is held up can buffer, so it never eats
	// the connection's window shared by hundreds of others
	// (250 × 256 KiB = 64 MiB, well under the connection's).
	h2StreamWindow = 256 << 10
)

// settingsWait bounds how long a new h2 connection waits for the
// server's first SETTINGS before streams are put on it: until then the
// client assumes 100 streams may be open, and a stream beyond a lower
// server limit would wait on the connection for a slot that a stream
// lasting hours never frees.
const settingsWait = time.Second

// settingsPoll is how often a new connection is checked for its SETTINGS.
const settingsPoll = 2 * time.Millisecond

// NewHTTPClient returns a client for streams and polls: no overall
// timeout, since a stream lasts hours, over a new Transport.
func NewHTTPClient(rootCAs *x509.CertPool) *http.Client {
	return &http.Client{Transport: NewTransport(rootCAs)}
}

// Transport is the RoundTripper the gateway uses toward Nellis. Over TLS
// it speaks HTTP/2 whenever the server offers it, so thousands of streams
// share a few connections, and HTTP/1.1 otherwise (plain http is always
// HTTP/1.1).
//
// net/http's own pool dials a new connection for every request that finds
// no free slot, all at once: a thousand streams opened together make
// hundreds of TLS handshakes, most of them thrown away. This pool dials
// one connection at a time per host, fills it up to the server's
// SETTINGS_MAX_CONCURRENT_STREAMS and only then dials the next, so N
// streams take ceil(N/limit) connections. The first connection to a host
// tells which protocol it speaks; a host without h2 is left to
// net/http's HTTP/1.1 pool from then on.
type Transport struct {
	base *http.Transport

	mu    sync.Mutex
	hosts map[string]*hostConns // by host:port, https only
}

// hostConns are one host's h2 connections.
type hostConns struct {
	http1   bool // the host answered without h2: use base
	conns   []*http.ClientConn
	dialing *dialCall // the dial in progress; nil if none
}

// dialCall is one dial that the requests finding no free slot wait for.
type dialCall struct {
	done chan struct{} // closed when the dial has ended
	err  error         // why it failed, set before done is closed
}

// NewTransport returns a Transport with dial, TLS-handshake and
// response-header timeouts of 10 s and an h2 ping on quiet connections.
// rootCAs are the authorities trusted for the server's certificate; nil
// means the system's.
func NewTransport(rootCAs *x509.CertPool) *Transport {
	dialer := &net.Dialer{Timeout: defaultDialTimeout, KeepAlive: 30 * time.Second}
	var tlsConfig *tls.Config
	if rootCAs != nil {
		tlsConfig = &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12}
	}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   defaultTLSHandshakeTimeout,
		ResponseHeaderTimeout: defaultResponseHeaderTimeout,
		IdleConnTimeout:       90 * time.Second,
		// Over HTTP/1.1 every stream holds a connection and its buffers
		// for hours, and all it ever writes is one GET of a few hundred
		// bytes: a small write buffer saves 3 KiB a stream.
		WriteBufferSize: 1 << 10,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout:           h2SendPingTimeout,
			PingTimeout:               h2PingTimeout,
			MaxReceiveBufferPerStream: h2StreamWindow,
		},
	}
	return &Transport{base: base, hosts: make(map[string]*hostConns)}
}

// RoundTrip sends req on a connection of the host with a free stream
// slot, dialing one when none has.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return t.base.RoundTrip(req)
	}
	key := req.URL.Host
	if _, port, err := net.SplitHostPort(key); err != nil || port == "" {
		key = net.JoinHostPort(req.URL.Hostname(), "443")
	}
	for attempt := 1; ; attempt++ {
		cc, http1, err := t.conn(req.Context(), key)
		if err != nil {
			return nil, err
		}
		if http1 {
			return t.base.RoundTrip(req)
		}
		resp, err := cc.RoundTrip(req)
		// A connection that died between the reservation and the request
		// (a GOAWAY, a reset) sent nothing: a bodiless request goes again,
		// once, on another. More would be a server failing every
		// connection, which the caller's backoff is for.
		if err != nil && attempt == 1 && cc.Err() != nil && req.Body == nil && req.Context().Err() == nil {
			continue
		}
		return resp, err
	}
}

// conn reserves a stream slot on one of key's h2 connections, dialing a
// new one, one dial at a time, when none has a free slot. http1 is true
// when the host does not speak h2.
func (t *Transport) conn(ctx context.Context, key string) (cc *http.ClientConn, http1 bool, err error) {
	for {
		t.mu.Lock()
		h := t.hosts[key]
		if h == nil {
			h = &hostConns{}
			t.hosts[key] = h
		}
		if h.http1 {
			t.mu.Unlock()
			return nil, true, nil
		}
		live := h.conns[:0]
		for _, c := range h.conns {
			if c.Err() == nil {
				live = append(live, c)
			}
		}
		clear(h.conns[len(live):])
		h.conns = live
		for _, c := range h.conns {
			if c.Reserve() == nil {
				t.mu.Unlock()
				return c, false, nil
			}
		}
		if call := h.dialing; call != nil {
			t.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			// A dial that failed fails its waiters too, or each would dial
			// in turn and the last would wait for all the timeouts before
			// it; only a dial cut short by its own request's end is retried.
			if call.err != nil && !errors.Is(call.err, context.Canceled) {
				return nil, false, call.err
			}
			continue
		}
		call := &dialCall{done: make(chan struct{})}
		h.dialing = call
		t.mu.Unlock()

		c, proto, err := t.dial(ctx, key)
		t.mu.Lock()
		h.dialing = nil
		call.err = err
		close(call.done)
		switch {
		case err != nil:
			t.mu.Unlock()
			return nil, false, err
		case proto != "h2":
			h.http1 = true
			t.mu.Unlock()
			// This connection goes unused: net/http's pool serves
			// HTTP/1.1, with its keep-alives, from now on.
			_ = c.Close()
			return nil, true, nil
		}
		h.conns = append(h.conns, c)
		t.mu.Unlock()
	}
}

// dial opens a connection to key and returns it with the protocol ALPN
// chose. An h2 connection is returned once the server's SETTINGS have
// set its stream limit, or after settingsWait.
func (t *Transport) dial(ctx context.Context, key string) (*http.ClientConn, string, error) {
	var proto string
	trace := &httptrace.ClientTrace{TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
		if err == nil {
			proto = cs.NegotiatedProtocol
		}
	}}
	c, err := t.base.NewClientConn(httptrace.WithClientTrace(ctx, trace), "https", key)
	if err != nil {
		return nil, "", err
	}
	if proto != "h2" {
		return c, proto, nil
	}
	// The connection says nothing when its SETTINGS arrive, but its
	// Available count moves off the value assumed before them. A server
	// announcing exactly that value costs settingsWait per connection.
	assumed := c.Available()
	deadline := time.Now().Add(settingsWait)
	for c.Available() == assumed && c.Err() == nil && time.Now().Before(deadline) {
		select {
		case <-time.After(settingsPoll):
		case <-ctx.Done():
			_ = c.Close()
			return nil, "", ctx.Err()
		}
	}
	if c.Err() != nil {
		_ = c.Close()
		return nil, "", errors.New("connection closed before its first request")
	}
	return c, proto, nil
}

// CloseIdleConnections closes every connection that carries no request.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	var idle []*http.ClientConn
	for _, h := range t.hosts {
		busy := h.conns[:0]
		for _, c := range h.conns {
			if c.InFlight() == 0 {
				idle = append(idle, c)
			} else {
				busy = append(busy, c)
			}
		}
		clear(h.conns[len(busy):])
		h.conns = busy
	}
	t.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
	t.base.CloseIdleConnections()
}
