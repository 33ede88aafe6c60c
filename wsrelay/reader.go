package wsrelay

import (
	"encoding/json"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// readLoop reads the client's messages. When none is left to read and the
// socket can be parked, it parks it and returns; the idle poller, or
// whoever closes the socket, runs it again (resumed). It unregisters the
// socket when the socket ends; until then the relay's WaitGroup counts the
// reader, parked or not.
func (c *conn) readLoop(resumed bool) {
	if resumed {
		c.refillBuffer()
	}
	parked := false
	defer func() {
		if !parked {
			c.teardown()
			c.r.wg.Done()
		}
	}()
	defer c.r.recoverPanic("reader", c)
	for {
		c.applyLimits()
		c.extendReadDeadline()
		if resumed {
			// Woken by the poller: whatever arrived is read before
			// parking again, pongs first.
			resumed = false
			if c.skipPongs() {
				continue
			}
		} else if c.park() {
			parked = true
			return
		}
		kind, data, err := c.readMessage()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce):
				c.readEndCode = ce.Code
			case errors.Is(err, websocket.ErrReadLimit):
				c.readEndCode = websocket.CloseMessageTooBig // gorilla sent it
			}
			return
		}
		if c.closing() {
			continue // drain until the writer has sent the close frame
		}
		// RFC 6455 §8.1: a text frame that is not UTF-8 fails the socket
		// with 1007. gorilla leaves the check to us; a browser never
		// sends one, so this is a broken or hostile client.
		if kind == websocket.TextMessage && !utf8.Valid(data) {
			c.r.hooksNow().messageIn("invalid")
			c.requestClose(websocket.CloseInvalidFramePayloadData, "text frame is not valid UTF-8")
			continue
		}
		cfg, now := c.r.config(), c.r.now()
		if !c.msgLimit.allow(now, cfg.MessagesPerSecond, cfg.MessageBurst) {
			if !c.floodLimit.allow(now, cfg.MessagesPerSecond, cfg.MessageBurst) {
				c.r.hooksNow().dropped("flood")
				c.requestClose(websocket.ClosePolicyViolation, "message rate exceeded")
				continue
			}
			c.r.hooksNow().dropped("rate")
			c.sendError("Rate limit exceeded: slow down", requestIDOf(data))
			continue
		}
		c.handle(data)
	}
}

// setControlHandlers answers a client's ping through the socket's queue,
// in order with everything else and without ever blocking the reader
// (gorilla's own handler writes the pong from the reader, and fails the
// socket if that takes a second); a pong only proves the client alive.
func (c *conn) setControlHandlers() {
	c.ws.SetPingHandler(func(data string) error {
		c.extendReadDeadline()
		c.enqueue(outMsg{frame: controlFrame(opPong, []byte(data)), key: coalesceKey{kind: kindPong}})
		return nil
	})
	c.ws.SetPongHandler(func(string) error {
		c.extendReadDeadline()
		return nil
	})
}

// readMessage is gorilla's ReadMessage, timed: msgStart marks the message
// from its first frame's header until its last fragment is read, so the
// sweeper can end one that takes too long. A client's pings and pongs
// between fragments push the read deadline back, not this.
func (c *conn) readMessage() (int, []byte, error) {
	kind, rd, err := c.ws.NextReader()
	if err != nil {
		return kind, nil, err
	}
	c.msgStart.Store(time.Now().UnixNano())
	defer c.msgStart.Store(0)
	data, err := io.ReadAll(rd)
	return kind, data, err
}

// applyLimits follows the current config's read limit, so a reload
// applies to open sockets; the message buckets read it on every message.
// Until the socket signs in, the limit is the small one: an authenticate
// message is short, and the socket is anyone's.
func (c *conn) applyLimits() {
	cfg := c.r.config()
	limit := cfg.MaxMessageSize
	if c.userOf() == nil {
		limit = min(limit, cfg.MaxUnauthenticatedMessageSize)
	}
	if limit != c.readLimit {
		c.readLimit = limit
		c.ws.SetReadLimit(limit)
	}
}

// extendReadDeadline ends a socket that has sent nothing, not even a pong,
// for two ping intervals. Deadlines use the real clock: they act on I/O.
func (c *conn) extendReadDeadline() {
	now := time.Now()
	c.lastRead.Store(now.UnixNano())
	_ = c.ws.SetReadDeadline(now.Add(time.Duration(2 * c.r.config().PingInterval)))
}

// teardown unregisters the socket; after it nothing is queued to it.
func (c *conn) teardown() {
	code := c.closeCode()
	c.mu.Lock()
	c.closed = true
	c.queue = nil
	c.mu.Unlock()
	c.ws.Close()

	r := c.r
	if r.poller != nil {
		r.poller.forget(c)
	}
	r.mu.Lock()
	delete(r.conns, c)
	r.leftSubsLocked(c) // fair use: they still count while their feeds linger
	if c.user != nil {
		delete(c.user.conns, c)
		c.user = nil
	} else {
		r.addUnauthedLocked(c.addr, -1)
	}
	subs := c.subs
	c.subs = nil
	for id := range subs {
		r.removeSubscriberLocked(id, c)
	}
	r.mu.Unlock()
	for id := range subs {
		r.release(id)
	}
	r.hooksNow().connClosed(code)
	if ce := r.log().Check(zap.DebugLevel, "client disconnected"); ce != nil {
		ce.Write(zap.String("client", c.id), zap.String("ip", c.ip), zap.Int("code", code))
	}
}

func requestIDOf(data []byte) json.RawMessage {
	var m struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return requestID(m.RequestID)
}
