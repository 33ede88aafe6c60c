package wsrelay

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Writing. One goroutine at a time holds a socket's writer's role (the
// writing flag, under the socket's mu); gorilla's own control replies and
// the relay's frames are also serialised on the socket's write lock
// (hijacked.wmu), so frames never interleave.
//
// The common case is a socket that keeps up, getting one message while
// nothing is queued: whoever delivers it (the feed fanning a change out,
// the reader answering a request, the sweeper) writes it at once with one
// non-blocking write, waking no goroutine. Whatever the kernel does not
// take at once, and everything queued meanwhile, is written by a writer
// goroutine that runs while the queue is non-empty, in one vectored write
// per batch, with WriteTimeout as its deadline. TLS sockets always use the
// writer goroutine: tls.Conn has no non-blocking write.

// enqueue sends m without blocking: at once if the socket is idle, else
// through its bounded queue. A socket whose queue is full is closed as
// slow: it has stopped reading while changes keep coming. It reports
// whether m was written in full at once, so that the socket keeps no
// reference to its frame.
func (c *conn) enqueue(m outMsg) (written bool) {
	c.mu.Lock()
	if c.closed || c.closeWith != nil {
		c.mu.Unlock()
		return false
	}
	if m.key.kind != kindNone {
		for i := range c.queue {
			if c.queue[i].key == m.key {
				if q := c.queue[i]; q.epoch == m.epoch && q.seq > m.seq {
					c.mu.Unlock() // the queued message is newer: keep it
					return false
				}
				c.queue[i] = m
				c.mu.Unlock()
				c.r.hooksNow().coalesced()
				return false
			}
		}
	}
	if !c.writing && len(c.queue) == 0 && c.hj.raw != nil {
		c.writing = true
		c.mu.Unlock()
		return c.writeNow(m)
	}
	if len(c.queue) >= c.r.config().QueueSize {
		c.mu.Unlock()
		c.r.hooksNow().dropped("queue full")
		c.r.hooksNow().slowClosed()
		c.requestClose(CloseSlow, "slow")
		return false
	}
	c.queue = append(c.queue, m)
	c.startWriterLocked()
	c.mu.Unlock()
	return false
}

// send queues a reply for this socket alone.
func (c *conn) send(msgType string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		c.r.log().Error("encode reply", zap.String("type", msgType), zap.Error(err))
		return
	}
	c.enqueue(newOutMsg(msgType, data))
}

// requestClose drops what is queued and has the writer send a close frame
// and close the socket. A frame already begun is finished first.
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

// writeNow writes m with one non-blocking write, for a caller that has
// taken the writer's role; it hands the role on to a writer goroutine if
// anything is left to write. It reports whether m was written in full.
func (c *conn) writeNow(m outMsg) (written bool) {
	n, err := c.tryWrite(m.frame)
	if err != nil {
		c.writeFailed(err)
		return false
	}
	written = n == len(m.frame)
	if written {
		c.wrote(m)
		c.mu.Lock()
	} else {
		rest := m
		rest.frame = m.frame[n:]
		c.mu.Lock()
		c.rest = &rest
	}
	if c.rest == nil && len(c.queue) == 0 && c.closeWith == nil {
		c.writing = false
		c.mu.Unlock()
		return written
	}
	c.runWriterLocked()
	c.mu.Unlock()
	return written
}

// tryWrite makes one non-blocking write of f and reports how much of it
// the kernel took; an error is the socket's end.
func (c *conn) tryWrite(f []byte) (int, error) {
	if !c.hj.wmu.TryLock() {
		return 0, nil // gorilla is writing a control reply: the writer waits for it
	}
	defer c.hj.wmu.Unlock()
	w := &c.hj.once
	w.f = f
	err := c.hj.raw.Write(w.call)
	n, werr := w.n, w.err
	*w = oneWrite{call: w.call} // keep no reference to the frame
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, nil // a deadline of gorilla's passed: the writer sets its own
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN || werr == syscall.EINTR:
		return 0, nil
	case werr != nil:
		return 0, werr
	}
	return max(n, 0), nil
}

// oneWrite is one write(2) attempt, as the function RawConn.Write calls;
// built once per socket and reused under its write lock, since a closure
// per write would cost three allocations.
type oneWrite struct {
	f    []byte
	n    int
	err  error
	call func(fd uintptr) bool // o.write, bound once
}

func (o *oneWrite) write(fd uintptr) bool {
	o.n, o.err = syscall.Write(int(fd), o.f)
	return true // one attempt: never wait here
}

// startWriterLocked starts the writer unless one runs.
func (c *conn) startWriterLocked() {
	if c.writing || c.closed {
		return
	}
	c.writing = true
	c.runWriterLocked()
}

// runWriterLocked starts a writer goroutine for a caller that holds the
// writer's role. The reader's share of the relay's WaitGroup is held while
// !closed, so Add is safe here.
func (c *conn) runWriterLocked() {
	if c.closed {
		c.writing = false
		return
	}
	c.r.wg.Add(1)
	go c.writeLoop()
}

// writeLoop writes until nothing is left: a frame begun, then everything
// queued, in batches; then the close frame, if one was asked for.
func (c *conn) writeLoop() {
	defer c.r.wg.Done()
	defer c.r.recoverPanic("writer", c)
	var batch []outMsg
	for {
		c.mu.Lock()
		switch {
		case c.rest != nil:
			batch = append(batch[:0], *c.rest)
			c.rest = nil
		case c.closeWith != nil || c.closed:
			cf := c.closeWith
			c.writing = false
			c.queue = nil
			c.mu.Unlock()
			if cf != nil {
				c.writeClose(cf)
			}
			return
		case len(c.queue) == 0:
			c.writing = false
			c.queue = nil // an idle socket keeps no queue memory
			c.mu.Unlock()
			return
		default:
			batch, c.queue = c.queue, batch[:0]
		}
		c.mu.Unlock()

		if err := c.writeFrames(batch); err != nil {
			c.writeFailed(err)
			return
		}
		for i := range batch {
			c.wrote(batch[i])
			batch[i] = outMsg{}
		}
	}
}

// writeFrames writes a batch at once, with the configured deadline, which
// it clears afterwards so that writeNow can try again: one vectored write
// on plain TCP; over TLS the frames are joined first, so that the batch is
// one TLS record and one write(2) rather than one of each per frame.
func (c *conn) writeFrames(batch []outMsg) error {
	c.hj.wmu.Lock()
	defer c.hj.wmu.Unlock()
	out := c.hj.out
	if err := out.SetWriteDeadline(time.Now().Add(time.Duration(c.r.config().WriteTimeout))); err != nil {
		return err // I/O deadlines use the real clock
	}
	var err error
	switch {
	case len(batch) == 1:
		_, err = out.Write(batch[0].frame)
	case c.hj.raw != nil:
		bufs := make(net.Buffers, len(batch))
		for i := range batch {
			bufs[i] = batch[i].frame
		}
		_, err = bufs.WriteTo(out)
	default:
		size := 0
		for i := range batch {
			size += len(batch[i].frame)
		}
		joined := make([]byte, 0, size)
		for i := range batch {
			joined = append(joined, batch[i].frame...)
		}
		_, err = out.Write(joined)
	}
	if err != nil {
		return err
	}
	return out.SetWriteDeadline(time.Time{})
}

// writeFailed ends the socket after a failed write: 4008 when the client
// did not take the data in time, else just closed.
func (c *conn) writeFailed(err error) {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.mu.Lock()
		c.writing = false
		c.mu.Unlock()
		c.closeSocket()
		return
	}
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
}

// wrote counts a message that has been written in full.
func (c *conn) wrote(m outMsg) {
	if m.msgType == "" {
		return // a control frame: no message to the extension
	}
	now := time.Now()
	c.lastSent.Store(now.UnixNano())
	h := c.r.hooksNow()
	h.messageOut(m.msgType)
	if !m.receivedAt.IsZero() {
		h.deliveryLatency(now.Sub(m.receivedAt))
	}
}

// writeClose sends a close frame, best effort: a client whose socket is
// jammed may see only the connection end. Then it closes the socket, which
// ends the reader.
func (c *conn) writeClose(cf *closeFrame) {
	c.hj.wmu.Lock()
	if err := c.hj.out.SetWriteDeadline(time.Now().Add(closeGrace)); err == nil {
		_, _ = c.hj.out.Write(closeFrameBytes(cf.code, cf.text))
	}
	c.hj.wmu.Unlock()
	c.closeSocket()
}
