package wsrelay

import (
	"encoding/json"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// The socket's handler (wsconn.Handler): its reader goroutine calls these,
// one at a time.

// Message applies the per-socket message rate, then handles the message.
func (c *conn) Message(data []byte) {
	cfg, now := c.r.config(), c.r.now()
	if !c.msgLimit.allow(now, cfg.MessagesPerSecond, cfg.MessageBurst) {
		if !c.floodLimit.allow(now, cfg.MessagesPerSecond, cfg.MessageBurst) {
			c.r.hooksNow().dropped("flood")
			c.requestClose(websocket.ClosePolicyViolation, "message rate exceeded")
			return
		}
		c.r.hooksNow().dropped("rate")
		c.sendError("Rate limit exceeded: slow down", requestIDOf(data))
		return
	}
	c.handle(data)
}

// Invalid counts a text message that is not UTF-8; the socket closes it
// with 1007.
func (c *conn) Invalid() { c.r.hooksNow().messageIn("invalid") }

// ReadLimit follows the current config, so a reload applies to open
// sockets; the message buckets read it on every message. Until the socket
// signs in, the limit is the small one: an authenticate message is short,
// and the socket is anyone's.
func (c *conn) ReadLimit() int64 {
	cfg := c.r.config()
	limit := cfg.MaxMessageSize
	if c.userOf() == nil {
		limit = min(limit, cfg.MaxUnauthenticatedMessageSize)
	}
	return limit
}

// SlowClosed counts and logs a client closed for not reading.
func (c *conn) SlowClosed() {
	c.r.hooksNow().slowClosed()
	if ce := c.r.log().Check(zap.DebugLevel, "closing slow client"); ce != nil {
		ce.Write(zap.String("client", c.id), zap.String("ip", c.ip))
	}
}

// Closed unregisters the socket; after it nothing is sent to it.
func (c *conn) Closed(code int) {
	r := c.r
	r.mu.Lock()
	delete(r.conns, c)
	r.leftSubsLocked(c) // fair use: they still count while their feeds linger
	var left string
	if c.user != nil {
		c.user.countSubs(c, -1)
		delete(c.user.conns, c)
		if len(c.user.conns) == 0 {
			left = c.user.name // the peers stop following the user
		}
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
	r.touchPeers(left)
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
