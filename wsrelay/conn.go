package wsrelay

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
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
	r    *Relay
	ws   *websocket.Conn
	hj   *hijacked
	id   string
	ip   string
	addr string // addressKey(ip): what the per-address limits count

	parked  atomic.Bool // no reader runs: the idle poller or a close starts one
	pollKey uint64      // the socket's key in the idle poller; guarded by its mu

	// Used by the reader goroutine only.
	readLimit   int64  // the read limit set on ws
	msgLimit    bucket // messages handled
	floodLimit  bucket // messages refused: a flood once it is empty
	readEndCode int    // the close code the read side ended with, if any
	authFails   int    // failed authenticate messages

	// msgStart is when the message being read began (unix ns of its first
	// frame's header), 0 between messages: the sweeper ends a message
	// that takes longer than MessageTimeout.
	msgStart atomic.Int64

	lastRead atomic.Int64 // unix ns of the last frame read, for the sweeper
	lastSent atomic.Int64 // unix ns of the last message written, for the sweeper

	mu        sync.Mutex
	queue     []outMsg
	rest      *outMsg     // the unwritten end of a frame begun: written first
	writing   bool        // someone holds the writer's role (writer.go)
	closed    bool        // the reader has ended; nothing more is queued
	closeWith *closeFrame // a close requested; the writer sends it last

	// Guarded by Relay.mu.
	user          *user
	unauthedSince int64 // unix ns since when user is nil: the sweeper's AuthTimeout
	subs          map[int64]struct{}
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
	kindPong
)

// outMsg is one queued message: its frame, ready to write, is shared by
// every socket that gets the same message and never modified.
type outMsg struct {
	msgType    string
	frame      []byte
	key        coalesceKey
	receivedAt time.Time // of the change behind it, for the latency hook
	// The feed version of a state message: a queued newer one is never
	// replaced by an older one.
	epoch string
	seq   uint64
}

// newOutMsg frames a text message built elsewhere.
func newOutMsg(msgType string, data []byte) outMsg {
	return outMsg{msgType: msgType, frame: textFrame(data)}
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
