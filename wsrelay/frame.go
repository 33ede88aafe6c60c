package wsrelay

import (
	"encoding/binary"
	"sync"
)

// A server's frames are unmasked (RFC 6455 §5.1), so a message framed once
// is the same bytes for every socket that gets it: the relay frames each
// message when it builds it and writes those bytes as they are, without
// gorilla's writer and its per-socket copy. Messages are never compressed.

// frameHeadroom is the largest header of a server frame: 2 bytes, 2 more
// for a 16-bit length, or 8 more for a 64-bit one.
const frameHeadroom = 10

const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
	finBit  = 0x80
)

// frameBuf starts a text frame built in place: room for the header, then
// the payload is appended, then finishText writes the header.
func frameBuf(payloadCap int) []byte {
	return make([]byte, frameHeadroom, frameHeadroom+payloadCap)
}

// framePool recycles frame buffers (frameBuf-shaped) that nothing refers to
// any more.
type framePool struct{ p sync.Pool }

type frameBuffer struct{ b []byte }

// get is a buffer with room for a payload of size bytes.
func (fp *framePool) get(size int) *frameBuffer {
	if fb, _ := fp.p.Get().(*frameBuffer); fb != nil && cap(fb.b) >= frameHeadroom+size {
		fb.b = fb.b[:frameHeadroom]
		return fb
	}
	return &frameBuffer{b: frameBuf(size + size/4)} // some room for the next, larger one
}

// put returns a buffer whose frame has been written and is referred to by
// nothing: not queued, not kept as a frame begun.
func (fp *framePool) put(fb *frameBuffer) { fp.p.Put(fb) }

// finishText turns a buffer from frameBuf, its payload appended, into the
// frame: the header is written just before the payload.
func finishText(b []byte) []byte {
	n := len(b) - frameHeadroom
	start := frameHeadroom - headerSize(n)
	putHeader(b[start:frameHeadroom], opText, n)
	return b[start:]
}

// textFrame frames a payload built elsewhere (a copy; for replies, not
// for fan-out).
func textFrame(payload []byte) []byte {
	return frameOf(opText, payload)
}

// pingFrame is the sweeper's ping, empty.
var pingFrame = []byte{finBit | opPing, 0}

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

// controlFrame is a ping or pong; a client's ping carries at most 125
// bytes, which gorilla has checked.
func controlFrame(op byte, payload []byte) []byte { return frameOf(op, payload) }

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
