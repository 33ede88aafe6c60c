package natstest

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of a server that a test can cut and
// restore, as a network between one gateway and NATS would fail: Cut
// closes every connection through it and refuses new ones until Restore.
type Proxy struct {
	t  testing.TB
	ln net.Listener

	mu     sync.Mutex
	target string
	cut    bool
	delay  time.Duration
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewProxy listens on a free port and forwards to the server, until the
// test ends.
func (n *Server) NewProxy() *Proxy {
	n.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.t.Fatal(err)
	}
	p := &Proxy{t: n.t, target: fmt.Sprintf("127.0.0.1:%d", n.port), ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	n.t.Cleanup(p.close)
	return p
}

// URL is the proxy's client URL.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Cut drops every connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Redirect drops every connection and forwards new ones to server to:
// a client reconnects through the proxy to another server, as one that
// fails over to a server on the other side of a partition.
func (p *Proxy) Redirect(to *Server) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = fmt.Sprintf("127.0.0.1:%d", to.port)
	for c := range p.conns {
		_ = c.Close()
	}
}

// Delay holds every byte d in each direction from now on, as a distant
// or overloaded server answers late: a round trip takes 2d longer.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

func (p *Proxy) delayed() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		target := p.target
		p.mu.Unlock()
		up, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut || p.target != target { // cut or redirected while dialling
			p.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies one way until either side closes, then closes both. Each
// chunk read is written once it has been held Delay: a delay line, so a
// delay adds latency, not a bound on throughput.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		at   time.Time
		data []byte
	}
	line := make(chan chunk, 1024)
	written := make(chan struct{})
	go func() {
		defer close(written)
		for c := range line {
			time.Sleep(time.Until(c.at.Add(p.delayed())))
			if _, err := dst.Write(c.data); err != nil {
				_ = src.Close() // ends the reader
				for range line {
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			line <- chunk{at: time.Now(), data: bytes.Clone(buf[:n])}
		}
		if err != nil {
			break
		}
	}
	close(line)
	<-written
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
