package wsconn

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// A server's frames are unmasked (RFC 6455 §5.1), so a message framed once
// is the same bytes for every socket that gets it: a message is framed when
// it is built and written as it is. Messages are never compressed.

// Headroom is the largest header of a server frame: 2 bytes, 2 more for a
// 16-bit length, or 8 more for a 64-bit one. A frame built in place
// starts with this much room, and FinishText writes the header into it.
const Headroom = 10

const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
	finBit  = 0x80
)

// Frame is one server frame, ready to write, shared by every socket that
// sends it, with a count of its holders. Its buffer goes back to a pool
// for the next frame when the last holder releases it, and not before: a
// frame fanned out to many sockets is written at once to most of them,
// queued on a few, and its bytes must stay as they are until the last
// queued copy is written or dropped.
//
// The rule: a new frame has one reference, its builder's. Socket.Send
// takes over one reference, which the socket releases once the frame is
// written, or dropped, replaced in the queue or refused. So a builder
// sending to one socket hands its reference over; one fanning out calls
// Retain before each Send and Release after the last. A frame is never
// modified after it is built.
type Frame struct {
	refs atomic.Int32
	buf  []byte // the whole buffer, headroom included
	b    []byte // the frame's bytes, a part of buf
}

var framePool = sync.Pool{New: func() any { return new(Frame) }}

// NewFrame is a frame to build in place with room for a payload of
// payloadCap bytes, from the pool when a buffer that large is free: append
// the payload to Buffer and pass the result to SetText.
func NewFrame(payloadCap int) *Frame {
	f := framePool.Get().(*Frame)
	if cap(f.buf) < Headroom+payloadCap {
		// Some room for the next, larger one.
		f.buf = make([]byte, 0, Headroom+payloadCap+payloadCap/4)
	}
	f.b = nil
	f.refs.Store(1)
	return f
}

// Buffer is the frame's empty buffer, Headroom bytes long: its payload is
// appended to it.
func (f *Frame) Buffer() []byte { return f.buf[:Headroom] }

// SetText makes b, a Buffer with a payload appended, the frame's text
// frame; the header is written in place, just before the payload.
func (f *Frame) SetText(b []byte) {
	f.buf = b[:0]
	f.b = FinishText(b)
}

// Bytes is the frame as it goes on the wire; read-only.
func (f *Frame) Bytes() []byte { return f.b }

// Retain adds a holder: call it before handing the frame to another Send.
func (f *Frame) Retain() { f.refs.Add(1) }

// Release drops a holder; the last one returns the buffer to the pool.
// A release without a matching reference is a bug that would corrupt a
// frame on the wire, so it panics.
func (f *Frame) Release() {
	switch n := f.refs.Add(-1); {
	case n == 0:
		f.b = nil
		framePool.Put(f)
	case n < 0:
		panic("wsconn: frame released more often than retained")
	}
}

// TextFrame frames a copy of payload.
func TextFrame(payload []byte) *Frame {
	f := NewFrame(len(payload))
	f.SetText(append(f.Buffer(), payload...))
	return f
}

// controlFrame is a ping or pong frame; a client's ping carries at most
// 125 bytes, which gorilla has checked.
func controlFrame(op byte, payload []byte) *Frame {
	f := NewFrame(len(payload))
	b := append(f.Buffer(), payload...)
	n := len(b) - Headroom
	start := Headroom - headerSize(n)
	putHeader(b[start:Headroom], op, n)
	f.buf, f.b = b[:0], b[start:]
	return f
}

// FinishText turns b, Headroom bytes and a payload, into a text frame: the
// header is written just before the payload, and the frame returned.
func FinishText(b []byte) []byte {
	n := len(b) - Headroom
	start := Headroom - headerSize(n)
	putHeader(b[start:Headroom], opText, n)
	return b[start:]
}

// closeFrameBytes is a close frame with a status code and a reason, which
// RFC 6455 §5.5 limits to 123 bytes.
func closeFrameBytes(code int, text string) []byte {
	if len(text) > 123 {
		text = text[:123]
	}
	payload := make([]byte, 2, 2+len(text))
	binary.BigEndian.PutUint16(payload, uint16(code))
	return frameOf(opClose, append(payload, text...))
}

func frameOf(op byte, payload []byte) []byte {
	h := headerSize(len(payload))
	f := make([]byte, h+len(payload))
	putHeader(f[:h], op, len(payload))
	copy(f[h:], payload)
	return f
}

func headerSize(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// putHeader writes a final, unmasked frame header of len(h) bytes.
func putHeader(h []byte, op byte, n int) {
	h[0] = finBit | op
	switch len(h) {
	case 2:
		h[1] = byte(n)
	case 4:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
}
