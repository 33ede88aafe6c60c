package wsconn

import (
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// readLoop reads the client's messages and hands each to the handler.
// When none is left to read and the socket can be parked, it parks it and
// returns; the idle poller, or whoever closes the socket, runs it again
// (resumed). It ends the socket when the socket ends; until then the
// transport's WaitGroup counts the reader, parked or not.
func (s *Socket) readLoop(resumed bool) {
	if resumed {
		s.refillBuffer()
	}
	parked := false
	defer func() {
		if !parked {
			s.teardown()
			s.t.wg.Done()
		}
	}()
	defer s.t.recoverPanic("reader", s)
	for {
		s.applyLimit()
		s.extendReadDeadline()
		if resumed {
			// Woken by the poller: whatever arrived is read before
			// parking again, pongs first.
			resumed = false
			if s.skipPongs() {
				continue
			}
		} else if s.park() {
			parked = true
			return
		}
		if s.hj.tls != nil {
			s.hj.clearStandingDeadline()
		}
		kind, data, err := s.readMessage()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce):
				s.readEndCode = int32(ce.Code)
			case errors.Is(err, websocket.ErrReadLimit):
				s.readEndCode = websocket.CloseMessageTooBig // sent by closeFromReader
				s.discardPending()
			}
			return
		}
		if s.Closing() {
			continue // drain until the writer has sent the close frame
		}
		// RFC 6455 §8.1: a text frame that is not UTF-8 fails the socket
		// with 1007. gorilla leaves the check to us; a browser never
		// sends one, so this is a broken or hostile client.
		if kind == websocket.TextMessage && !utf8.Valid(data) {
			s.h.Invalid()
			s.Close(websocket.CloseInvalidFramePayloadData, "text frame is not valid UTF-8")
			continue
		}
		s.h.Message(data)
	}
}

// setControlHandlers answers a client's ping through the socket's queue,
// in order with everything else and without ever blocking the reader
// (gorilla's own handler writes the pong from the reader, and fails the
// socket if that takes a second); a pong only proves the client alive. A
// client's close is echoed as the socket's last frame (closeFromReader).
func (s *Socket) setControlHandlers() {
	s.ws.SetPingHandler(func(data string) error {
		s.extendReadDeadline()
		s.Send(Message{Frame: controlFrame(opPong, []byte(data)), Key: Key{Class: classPong}})
		return nil
	})
	s.ws.SetPongHandler(func(string) error {
		s.extendReadDeadline()
		return nil
	})
}

// readMessage is gorilla's ReadMessage, timed: msgStart marks the message
// from its first frame's header until its last fragment is read, so the
// owner can end one that takes too long. A client's pings and pongs
// between fragments push the read deadline back, not this.
func (s *Socket) readMessage() (int, []byte, error) {
	kind, rd, err := s.ws.NextReader()
	if err != nil {
		return kind, nil, err
	}
	s.msgStart.Store(time.Now().UnixNano())
	defer s.msgStart.Store(0)
	data, err := io.ReadAll(rd)
	return kind, data, err
}

// applyLimit follows the handler's read limit, which may change with its
// state (a socket not signed in may get a smaller one) and its settings.
func (s *Socket) applyLimit() {
	if limit := s.h.ReadLimit(); limit != s.readLimit {
		s.readLimit = limit
		s.ws.SetReadLimit(limit)
	}
}

// extendReadDeadline ends a socket that has sent nothing, not even a pong,
// for two ping intervals. Deadlines use the real clock: they act on I/O.
func (s *Socket) extendReadDeadline() {
	if s.lingering.Load() {
		return // the close's grace period stands (linger)
	}
	now := time.Now()
	s.lastRead.Store(now.UnixNano())
	_ = s.ws.SetReadDeadline(now.Add(2 * s.t.config().PingInterval))
}

// teardown ends the socket: nothing is queued after it, its queued
// frames are released, and the handler hears the code.
func (s *Socket) teardown() {
	code := s.closeCode()
	s.mu.Lock()
	s.closed = true
	s.releaseQueueLocked()
	s.mu.Unlock()
	s.ws.Close()
	if s.t.poller != nil {
		s.t.poller.forget(s)
	}
	s.h.Closed(code)
}

// discardPending reads away, for a moment, what the client has sent
// beyond a message over the limit: the socket is closed right after its
// close frame, and a close with unread bytes makes the kernel send a
// reset, which can make the client drop the close frame it has not yet
// read (it sees 1006, not 1009).
func (s *Socket) discardPending() {
	conn := s.ws.UnderlyingConn()
	if conn.SetReadDeadline(time.Now().Add(discardFor)) != nil {
		return
	}
	var buf [4096]byte
	for {
		if _, err := conn.Read(buf[:]); err != nil {
			return
		}
	}
}

// discardFor bounds discardPending: long enough for the rest of a message
// already sent, short enough that a flooding client gains nothing.
const discardFor = 50 * time.Millisecond
