package wsconn

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"sync"
	"unsafe"
)

// tlsInput tells whether a *tls.Conn holds input the kernel no longer
// has: decrypted bytes not yet read (its input), ciphertext read ahead of
// the record being processed (its rawInput: crypto/tls reads what the
// socket has, up to the next records, to see a close_notify coming), or
// handshake bytes (hand). Only with all three empty does the descriptor
// tell the whole truth, and can an idle TLS socket be parked like a plain
// one: whatever comes next must come through the kernel, so epoll sees it.
//
// crypto/tls exposes none of this (nothing offers their length, and
// golang/go#43563 asks in vain for a way to drop the idle buffers). The
// fields are read with reflection, which reads unexported fields without
// unsafe: a bytes.Buffer's length is len(buf)-off, a bytes.Reader's
// len(s)-i. tlsLayout checks the layout once; should a Go release change
// it, TLS sockets are simply never parked (TestTLSInputLayout fails first).
//
// Empty is not free: rawInput and hand keep the capacity they grew to for
// the handshake's ClientHello (bytes.Buffer never shrinks), 3.5 KB of the
// 9.5 KB an idle TLS socket held (BenchmarkIdleConnMemoryTLS). So a parked
// socket's empty buffers are dropped (release): the one write into
// crypto/tls's fields, of their zero values, which bytes documents as
// empty and ready, hence unsafe's one use here. A woken reader's first
// record grows rawInput again, to 576 bytes for a small message.
//
// Only the socket's reader reads through the tls.Conn, and only it looks
// at these fields, between reads, or while parked, when no reader runs:
// nothing races. A tls.Conn's writes (records out, alerts, close_notify)
// touch only its output half.
type tlsInput struct {
	conn reflect.Value // the tls.Conn, addressable
}

// tlsFields is where the fields are: indices into tls.Conn, bytes.Buffer
// and bytes.Reader, found once.
type tlsFields struct {
	rawInput, input, hand []int
	bufBuf, bufOff        []int
	rdS, rdI              []int
}

// tlsLayout is the fields' layout, or nil if this Go's crypto/tls or
// bytes are not laid out as expected.
var tlsLayout = sync.OnceValue(func() *tlsFields {
	conn := reflect.TypeFor[tls.Conn]()
	buffer := reflect.TypeFor[bytes.Buffer]()
	reader := reflect.TypeFor[bytes.Reader]()
	field := func(t reflect.Type, name string, want reflect.Type) []int {
		f, ok := t.FieldByName(name)
		if !ok || f.Type != want {
			return nil
		}
		return f.Index
	}
	l := &tlsFields{
		rawInput: field(conn, "rawInput", buffer),
		input:    field(conn, "input", reader),
		hand:     field(conn, "hand", buffer),
		bufBuf:   field(buffer, "buf", reflect.TypeFor[[]byte]()),
		bufOff:   field(buffer, "off", reflect.TypeFor[int]()),
		rdS:      field(reader, "s", reflect.TypeFor[[]byte]()),
		rdI:      field(reader, "i", reflect.TypeFor[int64]()),
	}
	for _, idx := range [][]int{l.rawInput, l.input, l.hand, l.bufBuf, l.bufOff, l.rdS, l.rdI} {
		if idx == nil {
			return nil
		}
	}
	return l
})

// newTLSInput inspects c, or returns nil where the layout is unknown.
func newTLSInput(c *tls.Conn) *tlsInput {
	if tlsLayout() == nil {
		return nil
	}
	return &tlsInput{conn: reflect.ValueOf(c).Elem()}
}

// buffered is how many bytes of input c holds: decrypted, raw or of a
// handshake. Only the socket's reader calls it, between reads.
func (t *tlsInput) buffered() int {
	l := tlsLayout()
	buf := func(b reflect.Value) int {
		return b.FieldByIndex(l.bufBuf).Len() - int(b.FieldByIndex(l.bufOff).Int())
	}
	rd := t.conn.FieldByIndex(l.input)
	input := int64(rd.FieldByIndex(l.rdS).Len()) - rd.FieldByIndex(l.rdI).Int()
	return buf(t.conn.FieldByIndex(l.rawInput)) + buf(t.conn.FieldByIndex(l.hand)) + int(max(input, 0))
}

// release drops c's input buffers, which must be empty (buffered() == 0):
// for a parked socket, whose reader has ended.
func (t *tlsInput) release() {
	l := tlsLayout()
	for _, idx := range [][]int{l.rawInput, l.input, l.hand} {
		f := t.conn.FieldByIndex(idx)
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetZero()
	}
}
