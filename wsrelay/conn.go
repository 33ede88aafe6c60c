package wsrelay

import (
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/wsconn"
)

// CloseSlow is the close code of a client that does not read fast enough.
const CloseSlow = wsconn.CloseSlow

// conn is one client socket as the protocol sees it: the transport's
// socket (wsconn.Socket: framing, writes, parking, pings, read limits and
// deadlines) and what the relay knows of its client. It is the socket's
// handler: the socket's reader calls it with each message.
type conn struct {
	r    *Relay
	s    *wsconn.Socket
	id   string
	ip   string
	addr string // addressKey(ip): what the per-address limits count

	// Used by the reader goroutine only.
	msgLimit   bucket // messages handled
	floodLimit bucket // messages refused: a flood once it is empty
	authFails  int    // failed authenticate messages

	// Guarded by Relay.mu.
	user          *user
	unauthedSince int64     // unix ns since when user is nil: the sweeper's AuthTimeout
	expires       time.Time // the signed token's exp, when signed in with one: the sweeper closes the socket then
	subs          map[int64]struct{}

	// hold, while the socket lists its user's auctions (a sign-in,
	// getMonitoredAuctions), keeps what the fan-out and the pushes send
	// it until the listing is queued (signin.go); nil otherwise. Set by
	// the reader goroutine (under Relay.mu for a sign-in).
	hold atomic.Pointer[listHold]
}

// The coalescing keys' classes (wsconn.Key): a newer message of the same
// class and id replaces an unsent older one in a socket's queue.
const (
	kindState uint8 = 1 + iota
	kindUpdate
	kindHeartbeat
)

func stateKey(auctionID string) wsconn.Key {
	return wsconn.Key{Class: kindState, ID: auctionID}
}

// enqueue sends m to the socket, which takes over one reference to its
// frame (wsconn.Frame).
func (c *conn) enqueue(m wsconn.Message) { c.s.Send(m) }

// sendToAll sends m, the state of a (nil for a message of no auction), to
// every socket of conns, sharing its frame: each socket takes a
// reference, and the caller's own is released after, so the frame goes
// back to its pool once the last socket has written it. A socket that is
// listing its auctions holds m until the listing is queued (listHold).
// Callers sending a's state hold a.sendMu.
func sendToAll(conns []*conn, a *monitored, m wsconn.Message) {
	for _, c := range conns {
		m.Frame.Retain()
		if h := c.hold.Load(); h != nil && h.hold(a, m) {
			continue
		}
		c.enqueue(m)
	}
	m.Frame.Release()
}

// sendText frames a message built elsewhere and sends it to this socket
// alone.
func (c *conn) sendText(msgType string, data []byte) {
	c.s.Send(wsconn.Message{Frame: wsconn.TextFrame(data), Kind: msgType})
}

// send encodes a reply and sends it to this socket alone.
func (c *conn) send(msgType string, v any) {
	if data := c.encode(msgType, v); data != nil {
		c.sendText(msgType, data)
	}
}

// encode encodes a reply; nil, logged, for one that does not encode.
func (c *conn) encode(msgType string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		c.r.log().Error("encode reply", zap.String("type", msgType), zap.Error(err))
		return nil
	}
	return data
}

// requestClose has the socket send a close frame, after a frame begun,
// and close.
func (c *conn) requestClose(code int, text string) { c.s.Close(code, text) }

// closeAfterReplies has the socket write what is queued (the reply that
// explains the close), then a close frame, and close.
func (c *conn) closeAfterReplies(code int, text string) { c.s.CloseAfterQueued(code, text) }

// closeSocket closes the connection without a close frame.
func (c *conn) closeSocket() { c.s.Abort() }

// productKey is a subscribe socket's auctionUpdate key.
func productKey(productID int64) wsconn.Key {
	return wsconn.Key{Class: kindUpdate, ID: strconv.FormatInt(productID, 10)}
}

// transportHooks reports the transport's events through the relay's
// current Hooks (swapped on a reload) and logger.
type transportHooks struct{ r *Relay }

func (h transportHooks) Coalesced()            { h.r.hooksNow().coalesced() }
func (h transportHooks) Dropped(reason string) { h.r.hooksNow().dropped(reason) }

func (h transportHooks) Wrote(kind string, receivedAt time.Time) {
	hk := h.r.hooksNow()
	hk.messageOut(kind)
	if !receivedAt.IsZero() {
		hk.deliveryLatency(time.Since(receivedAt))
	}
}

func (h transportHooks) Panicked(goroutine string, v any, stack []byte) {
	h.r.log().Error("panic in relay goroutine", zap.String("goroutine", goroutine), zap.Any("panic", v), zap.ByteString("stack", stack))
}

// transportLimits are the transport's settings in cfg.
func transportLimits(cfg *Config) wsconn.Limits {
	return wsconn.Limits{QueueSize: cfg.QueueSize, WriteTimeout: time.Duration(cfg.WriteTimeout), PingInterval: time.Duration(cfg.PingInterval)}
}
