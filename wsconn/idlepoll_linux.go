//go:build !nellis_portable

package wsconn

import (
	"errors"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// idlePoller waits for parked sockets to become readable: one epoll set
// and one goroutine for all of them, so an idle socket costs no goroutine
// and no stack. Each wait is one-shot; the socket's reader re-arms it when
// it runs out of buffered messages again.
//
// Sockets are named in the epoll set by a key, never by pointer or file
// descriptor: a closed descriptor leaves the set by itself, and its number
// may come back for another socket.
type idlePoller struct {
	epfd int
	wake int // an eventfd that ends the loop

	mu     sync.Mutex
	closed bool
	next   uint64
	conns  map[uint64]*Socket // by key; an entry lives until forget
	done   chan struct{}
	stop   sync.Once
}

// wakeKey is the eventfd's key; socket keys start at 1.
const wakeKey = 0

func newIdlePoller() (*idlePoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setKey(&ev, wakeKey)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return nil, err
	}
	p := &idlePoller{epfd: epfd, wake: wake, conns: make(map[uint64]*Socket), done: make(chan struct{})}
	go p.run()
	return p, nil
}

func setKey(ev *unix.EpollEvent, key uint64) {
	ev.Fd, ev.Pad = int32(uint32(key)), int32(uint32(key>>32))
}

func keyOf(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// errPollerClosed refuses a wait after close: the reader keeps waiting in
// its goroutine instead.
var errPollerClosed = errors.New("idle poller closed")

// arm waits, once, for c's socket to become readable, then unparks c. A
// socket that is readable already is reported at once (level-triggered).
func (p *idlePoller) arm(c *Socket) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errPollerClosed
	}
	if c.pollKey == 0 {
		p.next++
		c.pollKey = p.next
		p.conns[c.pollKey] = c
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setKey(&ev, c.pollKey)
	var ctlErr error
	// Control holds the descriptor open: its number is this socket's
	// for the duration of the call.
	err := c.hj.raw.Control(func(fd uintptr) {
		ctlErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
		if ctlErr == unix.ENOENT {
			ctlErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err != nil {
		return err
	}
	return ctlErr
}

// forget drops c's key; its descriptor left the set when it was closed.
func (p *idlePoller) forget(c *Socket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.pollKey != 0 {
		delete(p.conns, c.pollKey)
	}
}

func (p *idlePoller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			p.fail()
			return
		}
		for i := range n {
			key := keyOf(&events[i])
			if key == wakeKey {
				return
			}
			p.mu.Lock()
			c := p.conns[key]
			p.mu.Unlock()
			if c != nil {
				c.unpark()
			}
		}
	}
}

// fail hands every parked socket back to a reader goroutine if the epoll
// set ever fails, so no socket waits on a poller that stopped.
func (p *idlePoller) fail() {
	p.mu.Lock()
	p.closed = true
	parked := make([]*Socket, 0, len(p.conns))
	for _, c := range p.conns {
		parked = append(parked, c)
	}
	p.mu.Unlock()
	for _, c := range parked {
		c.unpark()
	}
}

// close ends the loop. Sockets still parked are not woken: the relay has
// closed them all, and closing a parked socket unparks it (closeSocket).
func (p *idlePoller) close() {
	p.stop.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		_, _ = unix.Write(p.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0}) // a nonzero 8-byte count
		<-p.done
		unix.Close(p.wake)
		unix.Close(p.epfd)
	})
}
