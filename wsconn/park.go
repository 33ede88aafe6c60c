package wsconn

import "bufio"

// Parking. Most sockets are idle most of the time: an extension sends a
// message every 25 s and receives one per price change. A reader goroutine
// blocked in gorilla's ReadMessage would hold a stack of several KiB per
// socket for nothing, so a reader with nothing buffered hands its socket to
// the transport's idle poller (one epoll set for all sockets) and ends; the
// poller starts a new reader when the socket becomes readable. Closing a
// socket (Abort) starts one too, which finds the socket closed and
// tears it down, so a parked socket always ends through its reader.
//
// Only a socket whose descriptor tells the whole truth is parked: nothing
// may be buffered above the kernel. On plain TCP that is gorilla's read
// buffer, which park checks; over TLS the tls.Conn's input too (decrypted
// bytes, ciphertext read ahead, handshake bytes), which park checks with
// tlsInput, so a TLS socket parks on the TCP descriptor under it. Where
// that cannot be checked (an unknown tls.Conn layout, a connection with no
// descriptor), readers wait inside gorilla as before.
//
// A parked socket gives up its read buffer too, which is empty: gorilla
// keeps a pointer to the bufio.Reader, so the reader's contents are
// swapped rather than the pointer, and only while no reader runs. Over
// TLS it gives up the tls.Conn's empty input buffers as well (tlsinput.go).
//
// While parked, no read deadline can fire: the sweeper closes a parked
// socket that has been silent for two ping intervals instead.

// park parks the socket if it can be: reports whether it did, in which
// case the calling reader must end at once.
func (s *Socket) park() bool {
	p := s.t.poller
	if p == nil || s.hj == nil || s.hj.raw == nil || s.hj.br.Buffered() > 0 || s.lingering.Load() {
		return false
	}
	if s.hj.tls != nil {
		if s.hj.tls.buffered() > 0 {
			return false // the next message is in the TLS layer already
		}
		s.hj.tls.release()
	}
	*s.hj.br = bufio.Reader{}
	s.parked.Store(true) // before arming: the poller may fire at once
	if err := p.arm(s); err != nil {
		// The socket is closed or the poller is: read here instead,
		// unless a close already started a reader.
		if s.parked.CompareAndSwap(true, false) {
			s.refillBuffer()
			return false
		}
		return true
	}
	return true
}

// unpark starts a reader for a parked socket; no-op otherwise.
func (s *Socket) unpark() {
	if s.parked.CompareAndSwap(true, false) {
		go s.readLoop(true)
	}
}

// Abort closes the connection without a close frame and, if the socket
// is parked, starts the reader that will tear it down.
func (s *Socket) Abort() {
	s.ws.Close()
	s.unpark()
}

// skipPongs consumes complete pong frames at the head of the read buffer
// and reports whether it consumed any. The sweeper pings a socket that has
// been silent for a ping interval; its pong wakes the reader, and gorilla
// would handle the pong and then wait, deep in ReadMessage, for a message
// that may not come for minutes. Taking the pong here lets the reader park
// again. A resumed reader first fills the buffer with what arrived.
func (s *Socket) skipPongs() bool {
	br := s.hj.br
	if _, err := br.Peek(1); err != nil {
		return false // ReadMessage reports the error
	}
	skipped := false
	for {
		head, _ := br.Peek(min(br.Buffered(), 2))
		// A client's pong: FIN and opcode 0xA, no RSV bits, masked, with
		// a payload of at most 125 bytes (RFC 6455 §5.5); anything else,
		// or a pong not yet whole, is gorilla's to read.
		if len(head) < 2 || head[0] != 0x8A || head[1]&0x80 == 0 || head[1]&0x7F > 125 {
			return skipped
		}
		size := 2 + 4 + int(head[1]&0x7F)
		if br.Buffered() < size {
			return skipped
		}
		_, _ = br.Discard(size)
		skipped = true
		s.extendReadDeadline()
	}
}
