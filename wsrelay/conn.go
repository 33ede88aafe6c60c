package wsrelay

import (
	"encoding/json"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// CloseSlow is the close code of a client that does not read fast enough.
const CloseSlow = 4008

// closeGrace bounds the write of a close frame.
const closeGrace = time.Second

// conn is one client socket. Its reader goroutine runs while the client
// has something to read, and a writer goroutine only while its queue is
// non-empty: an idle socket on plain TCP is parked with the relay's idle
// poller and costs neither a goroutine nor a buffer beyond its 512-byte
// read buffer (see park).
type conn struct {
	r  *Relay
	ws *websocket.Conn
	hj *hijacked
	id string
	ip string

	parked  atomic.Bool // no reader runs: the idle poller or a close starts one
	pollKey uint64      // the socket's key in the idle poller; guarded by its mu

	// Used by the reader goroutine only.
	readLimit   int64  // the read limit set on ws
	msgLimit    bucket // messages handled
	floodLimit  bucket // messages refused: a flood once it is empty
	readEndCode int    // the close code the read side ended with, if any

	lastRead atomic.Int64 // unix ns of the last frame read, for the sweeper

	mu        sync.Mutex
	queue     []outMsg
	writing   bool        // a writer goroutine is running
	closed    bool        // the reader has ended; nothing more is queued
	closeWith *closeFrame // a close requested; the writer sends it last

	// Guarded by Relay.mu.
	user *user
	subs map[int64]struct{}
}

type closeFrame struct {
	code int
	text string
}

// coalesceKey names what a queued message is the latest version of; a newer
// message with the same key replaces an unsent older one in place.
type coalesceKey struct {
	kind uint8
	id   string
}

const (
	kindNone uint8 = iota
	kindState
	kindUpdate
	kindHeartbeat
	kindPing
)

// outMsg is one queued message. pm is shared by every socket that gets the
// same message; data is a reply for this socket alone.
type outMsg struct {
	msgType    string
	pm         *websocket.PreparedMessage
	data       []byte
	ping       bool
	key        coalesceKey
	receivedAt time.Time // of the change behind it, for the latency hook
	// The feed version of a state message: a queued newer one is never
	// replaced by an older one.
	epoch string
	seq   uint64
}

func newShared(msgType string, data []byte) outMsg {
	pm, _ := websocket.NewPreparedMessage(websocket.TextMessage, data) // cannot fail for text
	return outMsg{msgType: msgType, pm: pm}
}

// newOutMsg is a message for the given number of sockets: prepared once
// and shared when there are several; a single socket takes the bytes as
// they are, without the prepared message's copy.
func newOutMsg(msgType string, data []byte, sockets int) outMsg {
	if sockets > 1 {
		return newShared(msgType, data)
	}
	return outMsg{msgType: msgType, data: data}
}

// enqueue queues m without blocking. A socket whose queue is full is
// closed as slow: it has stopped reading while changes keep coming.
func (c *conn) enqueue(m outMsg) {
	c.mu.Lock()
	if c.closed || c.closeWith != nil {
		c.mu.Unlock()
		return
	}
	if m.key.kind != kindNone {
		for i := range c.queue {
			if c.queue[i].key == m.key {
				if q := c.queue[i]; q.epoch == m.epoch && q.seq > m.seq {
					c.mu.Unlock() // the queued message is newer: keep it
					return
				}
				c.queue[i] = m
				c.mu.Unlock()
				c.r.hooksNow().coalesced()
				return
			}
		}
	}
	if len(c.queue) >= c.r.config().QueueSize {
		c.mu.Unlock()
		c.r.hooksNow().dropped("queue full")
		c.r.hooksNow().slowClosed()
		c.requestClose(CloseSlow, "slow")
		return
	}
	c.queue = append(c.queue, m)
	c.startWriterLocked()
	c.mu.Unlock()
}

// send queues a reply for this socket alone.
func (c *conn) send(msgType string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		c.r.log().Error("encode reply", zap.String("type", msgType), zap.Error(err))
		return
	}
	c.enqueue(outMsg{msgType: msgType, data: data})
}

// requestClose drops what is queued and has the writer send a close frame
// and close the socket.
func (c *conn) requestClose(code int, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closeWith != nil {
		return
	}
	c.closeWith = &closeFrame{code, text}
	c.queue = nil
	c.startWriterLocked()
}

// startWriterLocked starts the writer unless one runs. The reader's share
// of the relay's WaitGroup is held while !closed, so Add is safe here.
func (c *conn) startWriterLocked() {
	if c.writing || c.closed {
		return
	}
	c.writing = true
	c.r.wg.Add(1)
	go c.writeLoop()
}

// writeLoop writes queued messages, one at a time, until the queue drains.
func (c *conn) writeLoop() {
	defer c.r.wg.Done()
	defer c.r.recoverPanic("writer", c)
	for {
		c.mu.Lock()
		if cf := c.closeWith; cf != nil || c.closed {
			c.writing = false
			c.queue = nil
			c.mu.Unlock()
			if cf != nil {
				c.writeClose(cf)
			}
			return
		}
		if len(c.queue) == 0 {
			c.writing = false
			c.queue = nil // an idle socket keeps no queue memory
			c.mu.Unlock()
			return
		}
		m := c.queue[0]
		c.queue[0] = outMsg{}
		c.queue = c.queue[1:]
		c.mu.Unlock()

		if err := c.write(m); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.mu.Lock()
				c.writing = false
				first := c.closeWith == nil
				if first {
					c.closeWith = &closeFrame{CloseSlow, "slow"}
				}
				cf := c.closeWith
				c.queue = nil
				c.mu.Unlock()
				if first {
					c.r.hooksNow().slowClosed()
					if ce := c.r.log().Check(zap.DebugLevel, "closing slow client"); ce != nil {
						ce.Write(zap.String("client", c.id), zap.String("ip", c.ip))
					}
				}
				c.writeClose(cf)
				return
			}
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			c.closeSocket()
			return
		}
	}
}

func (c *conn) write(m outMsg) error {
	cfg := c.r.config()
	deadline := time.Now().Add(cfg.WriteTimeout) // I/O deadlines use the real clock
	if m.ping {
		return c.ws.WriteControl(websocket.PingMessage, nil, deadline)
	}
	if err := c.ws.SetWriteDeadline(deadline); err != nil {
		return err
	}
	var err error
	if m.pm != nil {
		err = c.ws.WritePreparedMessage(m.pm)
	} else {
		err = c.ws.WriteMessage(websocket.TextMessage, m.data)
	}
	if err == nil {
		c.r.hooksNow().messageOut(m.msgType)
		if !m.receivedAt.IsZero() {
			c.r.hooksNow().deliveryLatency(time.Since(m.receivedAt))
		}
	}
	return err
}

// writeClose sends a close frame, best effort: a client whose socket is
// jammed may see only the connection end. Then it closes the socket, which
// ends the reader.
func (c *conn) writeClose(cf *closeFrame) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(cf.code, cf.text), time.Now().Add(closeGrace))
	c.closeSocket()
}

// closing reports whether the relay has decided to close the socket.
func (c *conn) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeWith != nil
}

// closeCode is the code the socket ended with: the relay's, else the one
// its reader saw (the client's, or 1009), else 1006. Only the reader calls it.
func (c *conn) closeCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closeWith != nil:
		return c.closeWith.code
	case c.readEndCode != 0:
		return c.readEndCode
	}
	return websocket.CloseAbnormalClosure
}
