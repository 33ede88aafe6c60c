package wsconn

import (
	"bufio"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// CloseSlow is the close code of a client that does not read fast enough:
// its queue filled up, or a write did not finish within WriteTimeout.
const CloseSlow = 4008

// closeGrace bounds the write of a close frame.
const closeGrace = time.Second

// readBufferSize is each socket's read buffer; larger messages are read
// in several steps.
const readBufferSize = 512

// Limits are the transport's settings; SetLimits applies new ones to the
// open sockets.
type Limits struct {
	// QueueSize is how many messages may wait for a socket's writer; one
	// more closes the socket with CloseSlow.
	QueueSize int
	// WriteTimeout bounds the write of a batch; past it the socket is
	// closed with CloseSlow.
	WriteTimeout time.Duration
	// PingInterval: a socket that sends nothing, not even a pong, for two
	// of them is closed (its read deadline).
	PingInterval time.Duration
}

// Hooks reports what the transport does, for metrics. Its methods are
// called on hot paths and must not block.
type Hooks interface {
	// Coalesced: a queued message was replaced by a newer one of its key.
	Coalesced()
	// Dropped: a message was not sent, for reason ("queue full").
	Dropped(reason string)
	// Wrote: a message of kind was written in full; receivedAt is the
	// message's, zero when it has none.
	Wrote(kind string, receivedAt time.Time)
	// Panicked: a bug in one of the transport's goroutines (or in a
	// Handler it called) was contained; the socket is closed.
	Panicked(goroutine string, v any, stack []byte)
}

// Handler is what a socket's owner does with it. Its methods are called
// on the socket's reader goroutine, one at a time.
type Handler interface {
	// Message handles one whole message; data is the handler's to keep.
	// A text message has been checked to be UTF-8.
	Message(data []byte)
	// Invalid: a text message was not UTF-8; the socket is being closed
	// with 1007.
	Invalid()
	// ReadLimit is the largest message the next read accepts; one larger
	// closes the socket with 1009. Asked before every message.
	ReadLimit() int64
	// SlowClosed: the socket is being closed with CloseSlow.
	SlowClosed()
	// Closed: the socket has ended with code (the one it was closed with,
	// the client's, 1009 or 1006); nothing is sent after it. Called once.
	Closed(code int)
}

// Key names what a queued message is the latest version of: a newer
// message with the same key replaces an unsent older one in place. The
// zero Key is never replaced. Classes from 250 up are the transport's.
type Key struct {
	Class uint8
	ID    string
}

const (
	classPing uint8 = 250 + iota
	classPong
)

// Message is one message to send.
type Message struct {
	// Frame is the message, framed; Send takes over one reference to it.
	Frame *Frame
	// Kind names the message for the Wrote hook; "" for a control frame.
	Kind string
	Key  Key
	// ReceivedAt is when the change behind the message arrived, for the
	// latency the Wrote hook reports; zero for none.
	ReceivedAt time.Time
	// Epoch and Seq version a keyed message: a queued message is never
	// replaced by one of the same epoch and a lower seq.
	Epoch string
	Seq   uint64
	// Fence: no keyed message sent after this one replaces one queued
	// before it. A newer state coalesced into an older one's place would
	// overtake the fence, say a listing of states the client reads as
	// the newest it has, and the listing's older state would then follow it.
	Fence bool

	off int // how much of Frame is written already (a frame begun)
}

// Transport is what a set of sockets share: the settings, the idle
// poller, the hooks, and a WaitGroup counting every goroutine of theirs.
type Transport struct {
	limits atomic.Pointer[Limits]
	hooks  Hooks
	unwrap func(net.Conn) net.Conn
	poller *idlePoller // nil where epoll is missing: idle readers wait in gorilla
	wg     sync.WaitGroup

	upgrader websocket.Upgrader
}

// New starts a transport. unwrap returns the connection under a server's
// wrapper of a hijacked connection, for a wrapper that passes reads
// straight through and buffers nothing (Caddy's h2c-preface check, say),
// or nil; an idle socket on plain TCP (or TLS over it) is then parked
// without a goroutine.
// pollerErr says why idle sockets keep their reader goroutines, if they do.
func New(limits Limits, hooks Hooks, unwrap func(net.Conn) net.Conn) (t *Transport, pollerErr error) {
	t = &Transport{hooks: hooks, unwrap: unwrap}
	t.SetLimits(limits)
	t.upgrader = websocket.Upgrader{
		// Small buffers keep an idle socket cheap. gorilla writes nothing
		// of its own (see hijack.go), so its write buffer serves only the
		// handshake. The read buffer (readBufferSize) comes with the
		// hijacked connection; zero makes gorilla use it.
		ReadBufferSize:  0,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		// The owner checks the origin itself, before it upgrades.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	p, err := newIdlePoller()
	if err == nil {
		t.poller = p
	}
	return t, err
}

// SetLimits applies limits to every socket, open or not.
func (t *Transport) SetLimits(l Limits) { t.limits.Store(&l) }

func (t *Transport) config() *Limits { return t.limits.Load() }

// Wait returns when every goroutine of every socket has ended.
func (t *Transport) Wait() { t.wg.Wait() }

// Close stops the idle poller; call it after every socket has ended
// (Wait), since a socket still parked would not be woken.
func (t *Transport) Close() {
	if t.poller != nil {
		t.poller.close()
	}
}

// Polling reports whether idle sockets are parked without a goroutine.
func (t *Transport) Polling() bool { return t.poller != nil }

// recoverPanic contains a bug in a socket's goroutine: reported, and only
// that socket ends.
func (t *Transport) recoverPanic(what string, s *Socket) {
	if v := recover(); v != nil {
		t.hooks.Panicked(what, v, debug.Stack())
		if s != nil {
			s.Abort()
		}
	}
}

// Socket is one WebSocket connection from the hijack to the close. Its
// reader goroutine runs while the client has something to read, and a
// writer goroutine only while its queue is non-empty: an idle socket, on
// plain TCP or TLS, is parked with the transport's idle poller and costs
// neither a goroutine nor an empty buffer (park.go).
type Socket struct {
	t  *Transport
	ws *websocket.Conn
	hj *hijacked
	h  Handler

	pollKey uint64 // the socket's key in the idle poller; guarded by its mu

	// Used by the reader goroutine only.
	readLimit   int64 // the read limit set on ws
	readEndCode int32 // the close code the read side ended with, if any

	parked atomic.Bool // no reader runs: the idle poller or a close starts one
	// lingering: a close frame is out and the reader drains what the
	// client still sends, under closeGrace's deadline (writer.go linger).
	lingering atomic.Bool

	// msgStart is when the message being read began (unix ns of its first
	// frame's header), 0 between messages: the owner ends a message that
	// takes too long (MessageStart).
	msgStart atomic.Int64

	lastRead atomic.Int64 // unix ns of the last frame read
	lastSent atomic.Int64 // unix ns of the last message written

	mu        sync.Mutex
	queue     []Message
	rest      *Message    // the unwritten end of a frame begun: written first
	writing   bool        // someone holds the writer's role (writer.go)
	closed    bool        // the reader has ended; nothing more is queued
	closeWith *closeFrame // a close requested; the writer sends it last
}

type closeFrame struct {
	code int
	text string
	// raw is the frame gorilla wrote, sent as it is; fromReader: the
	// reader's end code (readEndCode) is the socket's, not this one.
	raw        []byte
	fromReader bool
	// afterQueued: what is queued is written first (CloseAfterQueued).
	afterQueued bool
}

// Parked reports whether no reader goroutine runs for the socket.
func (s *Socket) Parked() bool { return s.parked.Load() }

// LastRead is when the client last sent a frame (a pong included).
func (s *Socket) LastRead() time.Time { return time.Unix(0, s.lastRead.Load()) }

// LastSent is when a message was last written in full.
func (s *Socket) LastSent() time.Time { return time.Unix(0, s.lastSent.Load()) }

// MessageStart is when the message being read began, zero between
// messages.
func (s *Socket) MessageStart() time.Time {
	if ns := s.msgStart.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Writing reports whether a writer holds the socket: something is being
// written or waits in the queue.
func (s *Socket) Writing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writing || len(s.queue) > 0
}

// Closing reports whether the socket is being closed.
func (s *Socket) Closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeWith != nil || s.closed
}

// closeCode is the code the socket ended with: the one it was closed
// with, else the one its reader saw (the client's, or 1009), else 1006.
// Only the reader calls it.
func (s *Socket) closeCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closeWith != nil && !s.closeWith.fromReader:
		return s.closeWith.code
	case s.readEndCode != 0:
		return int(s.readEndCode)
	}
	return websocket.CloseAbnormalClosure
}

// refillBuffer gives a resumed reader its read buffer back.
func (s *Socket) refillBuffer() {
	*s.hj.br = *bufio.NewReaderSize(s.hj.in, readBufferSize)
}
