package wsconn

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Writing. Only the transport writes to a socket (gorilla's close frames
// come through readerConn). One goroutine at a time holds a socket's
// writer's role (the writing flag, under the socket's mu), and every write
// takes the socket's write lock (hijacked.wmu), so frames never
// interleave.
//
// The common case is a socket that keeps up, getting one message while
// nothing is queued: whoever sends it (the owner fanning a change out,
// the reader answering a request, a timer) writes it at once with one
// non-blocking write, waking no goroutine. Whatever the kernel does not
// take at once, and everything queued meanwhile, is written by a writer
// goroutine that runs while the queue is non-empty, in one vectored write
// per batch, with WriteTimeout as its deadline. TLS sockets always use the
// writer goroutine: tls.Conn has no non-blocking write; their batches are
// joined into one TLS record.

// Send sends m without blocking: at once if the socket is idle, else
// through its bounded queue. A socket whose queue is full is closed with
// CloseSlow: it has stopped reading while messages keep coming. Send takes
// over one reference to m.Frame and releases it when the frame is
// written, replaced or dropped.
func (s *Socket) Send(m Message) {
	m.off = 0
	s.mu.Lock()
	if s.closed || s.closeWith != nil {
		s.mu.Unlock()
		m.Frame.Release()
		return
	}
	if m.Key != (Key{}) {
		// From the newest back to the last fence: a key is queued at most
		// once between two fences.
		for i := len(s.queue) - 1; i >= 0 && !s.queue[i].Fence; i-- {
			if s.queue[i].Key == m.Key {
				if q := s.queue[i]; q.Epoch == m.Epoch && q.Seq > m.Seq {
					s.mu.Unlock() // the queued message is newer: keep it
					m.Frame.Release()
					return
				}
				old := s.queue[i].Frame
				s.queue[i] = m
				s.mu.Unlock()
				old.Release()
				s.t.hooks.Coalesced()
				return
			}
		}
	}
	if !s.writing && len(s.queue) == 0 && s.hj.raw != nil {
		s.writing = true
		s.mu.Unlock()
		s.writeNow(m)
		return
	}
	if len(s.queue) >= s.t.config().QueueSize {
		s.mu.Unlock()
		m.Frame.Release()
		s.t.hooks.Dropped("queue full")
		s.slowClosed()
		s.Close(CloseSlow, "slow")
		return
	}
	s.queue = append(s.queue, m)
	s.startWriterLocked()
	s.mu.Unlock()
}

// SendAll sends ms in order, all or none, for a burst the client asked for
// (a resume's replay) that must not cost it its socket: it queues them
// only when the queue takes them all and still has reserve places free,
// and otherwise sends none and reports false, so the caller can send
// something smaller instead. It never closes the socket as slow, and never
// coalesces: ms are queued as they are. Like Send it takes over one
// reference to each frame, and releases them when it sends none.
func (s *Socket) SendAll(ms []Message, reserve int) bool {
	s.mu.Lock()
	if s.closed || s.closeWith != nil {
		s.mu.Unlock()
		releaseAll(ms)
		return true // nothing to send to: nothing smaller would go either
	}
	if len(s.queue)+len(ms)+reserve > s.t.config().QueueSize {
		s.mu.Unlock()
		releaseAll(ms)
		return false
	}
	for _, m := range ms {
		m.off = 0
		s.queue = append(s.queue, m)
	}
	if len(s.queue) > 0 {
		s.startWriterLocked()
	}
	s.mu.Unlock()
	return true
}

func releaseAll(ms []Message) {
	for _, m := range ms {
		m.Frame.Release()
	}
}

// Ping sends a ping, unless one is queued already.
func (s *Socket) Ping() {
	s.Send(Message{Frame: controlFrame(opPing, nil), Key: Key{Class: classPing}})
}

// Close drops what is queued and has the writer send a close frame with
// code and text and close the socket. A frame already begun is finished
// first. The first Close wins.
func (s *Socket) Close(code int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.closeWith != nil {
		return
	}
	s.closeWith = &closeFrame{code: code, text: text}
	s.releaseQueueLocked()
	s.startWriterLocked()
}

// CloseAfterQueued is Close for a socket whose last replies must reach
// the client (the answer to the request that ends it): the writer writes
// what is queued first, within WriteTimeout as ever, then the close frame.
func (s *Socket) CloseAfterQueued(code int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.closeWith != nil {
		return
	}
	s.closeWith = &closeFrame{code: code, text: text, afterQueued: true}
	s.startWriterLocked()
}

// closeFromReader sends a close frame gorilla wrote on the reader
// goroutine (raw: a client's close echoed, 1009, 1002) as the socket's
// last frame: at once when no writer runs, as gorilla did, else by the
// writer after its batch, if the socket is still open by then (the reader
// ends the socket when it returns). The socket's end code stays what the
// reader saw.
func (s *Socket) closeFromReader(code int, text string, raw []byte) {
	s.mu.Lock()
	if s.closed || s.closeWith != nil {
		s.mu.Unlock()
		return
	}
	cf := &closeFrame{code: code, text: text, raw: append([]byte(nil), raw...), fromReader: true}
	s.closeWith = cf
	s.releaseQueueLocked()
	if s.writing {
		s.mu.Unlock()
		return
	}
	s.writing = true
	s.mu.Unlock()
	s.writeClose(cf)
}

func (s *Socket) releaseQueueLocked() {
	for i := range s.queue {
		s.queue[i].Frame.Release()
	}
	s.queue = nil
}

// writeNow writes m with one non-blocking write, for a caller that has
// taken the writer's role; it hands the role on to a writer goroutine if
// anything is left to write.
func (s *Socket) writeNow(m Message) {
	f := m.Frame.Bytes()
	var n int
	var err error
	if s.hj.tls != nil {
		n, err = s.tryWriteTLS(f)
	} else {
		n, err = s.tryWrite(f)
	}
	if err != nil {
		m.Frame.Release()
		s.writeFailed(err)
		return
	}
	if n == len(f) {
		s.wrote(m)
		m.Frame.Release()
		s.mu.Lock()
	} else {
		rest := m
		rest.off = n
		s.mu.Lock()
		s.rest = &rest
	}
	if s.rest == nil && len(s.queue) == 0 && s.closeWith == nil {
		s.writing = false
		s.mu.Unlock()
		return
	}
	s.runWriterLocked()
	s.mu.Unlock()
}

// tryWrite makes one non-blocking write of f and reports how much of it
// the kernel took; an error is the socket's end.
func (s *Socket) tryWrite(f []byte) (int, error) {
	if !s.hj.wmu.TryLock() {
		return 0, nil // a close frame is being written: the writer waits for it
	}
	defer s.hj.wmu.Unlock()
	w := &s.hj.once
	w.f = f
	err := s.hj.raw.Write(w.call)
	n, werr := w.n, w.err
	*w = oneWrite{call: w.call} // keep no reference to the frame
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, nil // a deadline passed: the writer sets its own
	case err != nil:
		return 0, err
	case wouldBlock(werr):
		return 0, nil
	case werr != nil:
		return 0, werr
	}
	return max(n, 0), nil
}

// tryWriteTLS writes f through TLS at once if the kernel takes the whole
// record without waiting (roomCheck), else nothing: a tls.Conn cannot
// write part of a record and try again later. The deadline is only the
// writer's safety net: with the kernel's room checked, the write does not
// wait for the client. So it is not set and cleared around every frame
// (two timer updates, 7 % of the gateway's CPU at 10,000 TLS clients)
// but left standing (standingDeadline).
func (s *Socket) tryWriteTLS(f []byte) (int, error) {
	if !s.hj.wmu.TryLock() {
		return 0, nil // a close frame is being written: the writer waits for it
	}
	defer s.hj.wmu.Unlock()
	now := time.Now()
	if !s.hj.room.takes(s.hj.raw, len(f)+tlsRecordOverhead, now) {
		return 0, nil
	}
	if err := s.hj.standingDeadline(now, s.t.config().WriteTimeout); err != nil {
		return 0, err
	}
	if _, err := s.hj.out.Write(f); err != nil {
		return 0, err
	}
	return len(f), nil
}

// tlsRecordOverhead bounds what TLS adds to a frame of up to one record
// (16 KiB): a 5-byte header, the content type and a 16-byte tag in TLS
// 1.3, a little more in 1.2; a larger frame is written by the writer
// whenever the send buffer is small.
const tlsRecordOverhead = 64

// startWriterLocked starts the writer unless one runs.
func (s *Socket) startWriterLocked() {
	if s.writing || s.closed {
		return
	}
	s.writing = true
	s.runWriterLocked()
}

// runWriterLocked starts a writer goroutine for a caller that holds the
// writer's role. The reader's share of the transport's WaitGroup is held
// while !closed, so Add is safe here.
func (s *Socket) runWriterLocked() {
	if s.closed {
		s.writing = false
		return
	}
	s.t.wg.Add(1)
	go s.writeLoop()
}

// writeLoop writes until nothing is left: a frame begun, then everything
// queued, in batches; then the close frame, if one was asked for.
func (s *Socket) writeLoop() {
	defer s.t.wg.Done()
	defer s.t.recoverPanic("writer", s)
	var batch []Message
	for {
		s.mu.Lock()
		switch {
		case s.rest != nil:
			batch = append(batch[:0], *s.rest)
			s.rest = nil
		case s.closed || s.closeWith != nil && (!s.closeWith.afterQueued || len(s.queue) == 0):
			cf := s.closeWith
			s.writing = false
			s.releaseQueueLocked()
			s.mu.Unlock()
			if cf != nil {
				s.writeClose(cf)
			}
			return
		case len(s.queue) == 0:
			s.writing = false
			s.queue = nil // an idle socket keeps no queue memory
			s.mu.Unlock()
			return
		default:
			batch, s.queue = s.queue, batch[:0]
		}
		s.mu.Unlock()

		err := s.writeFrames(batch)
		for i := range batch {
			if err == nil {
				s.wrote(batch[i])
			}
			batch[i].Frame.Release()
			batch[i] = Message{}
		}
		if err != nil {
			s.writeFailed(err)
			return
		}
	}
}

// writeFrames writes a batch at once, with the configured deadline, which
// it clears afterwards so that writeNow can try again: one vectored write
// on plain TCP; over TLS the frames are joined first, so that the batch is
// one TLS record and one write(2) rather than one of each per frame.
func (s *Socket) writeFrames(batch []Message) error {
	s.hj.wmu.Lock()
	defer s.hj.wmu.Unlock()
	out := s.hj.out
	deadline := time.Now().Add(s.t.config().WriteTimeout)
	if err := s.hj.setWriteDeadline(deadline); err != nil {
		return err // I/O deadlines use the real clock
	}
	// The batch spends kernel room the inline TLS write has not counted.
	s.hj.room.forget()
	var err error
	switch {
	case len(batch) == 1:
		_, err = out.Write(batch[0].bytes())
	case s.hj.plain():
		bufs := make(net.Buffers, len(batch))
		for i := range batch {
			bufs[i] = batch[i].bytes()
		}
		_, err = bufs.WriteTo(out)
	default:
		err = writeJoined(out, batch)
	}
	if err != nil {
		return err
	}
	return s.hj.setWriteDeadline(time.Time{})
}

// writeJoined writes a batch's frames as one write, so one TLS record,
// through a pooled buffer: a batch waits only for a socket that fell
// behind, and then each of its batches would allocate its size anew.
func writeJoined(out net.Conn, batch []Message) error {
	size := 0
	for i := range batch {
		size += len(batch[i].bytes())
	}
	bp := joinPool.Get().(*[]byte)
	joined := (*bp)[:0]
	if cap(joined) < size {
		joined = make([]byte, 0, size)
	}
	for i := range batch {
		joined = append(joined, batch[i].bytes()...)
	}
	_, err := out.Write(joined)
	if cap(joined) <= maxPooledJoin {
		*bp = joined[:0]
		joinPool.Put(bp)
	}
	return err
}

var joinPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledJoin: a larger joined batch (a long backlog) is not kept.
const maxPooledJoin = 64 << 10

// bytes is what is left to write of m's frame.
func (m *Message) bytes() []byte { return m.Frame.Bytes()[m.off:] }

// writeFailed ends the socket after a failed write: CloseSlow when the
// client did not take the data in time, else just closed.
func (s *Socket) writeFailed(err error) {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		s.mu.Lock()
		s.writing = false
		s.releaseQueueLocked()
		s.mu.Unlock()
		s.Abort()
		return
	}
	s.mu.Lock()
	s.writing = false
	first := s.closeWith == nil
	if first {
		s.closeWith = &closeFrame{code: CloseSlow, text: "slow"}
	}
	cf := s.closeWith
	s.releaseQueueLocked()
	s.mu.Unlock()
	if first {
		s.slowClosed()
	}
	s.writeClose(cf)
}

func (s *Socket) slowClosed() {
	if s.h != nil {
		s.h.SlowClosed()
	}
}

// wrote counts a message that has been written in full.
func (s *Socket) wrote(m Message) {
	if m.Kind == "" {
		return // a control frame: no message to the client's application
	}
	s.lastSent.Store(time.Now().UnixNano())
	s.t.hooks.Wrote(m.Kind, m.ReceivedAt)
}

// writeClose sends a close frame, best effort: a client whose socket is
// jammed may see only the connection end. Then it lingers: closing the
// connection at once, with the client's bytes still unread (a flooding
// client's, say), would make the kernel answer with a reset, which can
// reach the client before the close frame does and lose it. So the write
// side is shut (plain TCP: a FIN after the close frame), and the reader
// discards what the client still sends until its close or closeGrace,
// whichever comes first; then the connection is closed.
func (s *Socket) writeClose(cf *closeFrame) {
	f := cf.raw
	if f == nil {
		f = closeFrameBytes(cf.code, cf.text)
	}
	s.hj.wmu.Lock()
	s.hj.room.forget()
	err := s.hj.setWriteDeadline(time.Now().Add(closeGrace))
	if err == nil {
		_, err = s.hj.out.Write(f)
	}
	s.hj.wmu.Unlock()
	if err != nil || cf.fromReader {
		// Nothing more to say, or the client has closed already: its
		// close was the last thing it sent.
		s.Abort()
		return
	}
	s.linger()
}

// linger lets the reader drain the client's last bytes for at most
// closeGrace after the close frame (writeClose).
func (s *Socket) linger() {
	s.lingering.Store(true)
	if cw, ok := s.hj.out.(interface{ CloseWrite() error }); ok {
		if _, isTCP := s.hj.out.(*net.TCPConn); isTCP {
			_ = cw.CloseWrite()
		}
	}
	if err := s.ws.SetReadDeadline(time.Now().Add(closeGrace)); err != nil {
		s.Abort()
		return
	}
	s.unpark() // a parked socket gets a reader to drain it
}
