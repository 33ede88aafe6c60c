package sseupstream

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestTransportFailedDialFailsItsWaiters: requests that wait for another's
// dial fail with it. A host that accepts TCP but never answers the TLS
// handshake costs every stream one handshake timeout, not one per stream
// before it, as it would if each waiter dialed in turn.
func TestTransportFailedDialFailsItsWaiters(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // silent: the handshake never completes
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		<-accepted
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()

	const timeout, streams = 300 * time.Millisecond, 5
	tr := NewTransport(nil)
	tr.base.TLSHandshakeTimeout = timeout
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams {
		wg.Go(func() {
			resp, err := client.Get("https://" + ln.Addr().String() + "/live-products")
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		if err == nil {
			t.Error("a request succeeded against a server that never handshakes")
		}
	}
	if took > 3*timeout {
		t.Errorf("%d requests took %s to fail, want about one handshake timeout (%s)", streams, took, timeout)
	}
}
