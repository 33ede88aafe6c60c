package hub

import (
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/fallback"
	"github.com/nellis-edge/gateway/sseupstream"
)

// streamRoom is how many stream messages wait for the feed's goroutine
// before the stream's reader waits too.
const streamRoom = 16

// liveStream is the feed's current upstream stream.
type liveStream struct {
	gen     uint64 // tells its messages from those of streams already closed
	stream  Stream
	quit    chan struct{} // closed before Close, so no observer call blocks it
	up      bool          // StreamUp seen, StreamDown not yet
	healthy bool          // up and at least one event since
}

type streamMsgKind int

const (
	msgUp streamMsgKind = iota
	msgEvent
	msgDecodeError
	msgDown
)

type streamMsg struct {
	gen    uint64
	kind   streamMsgKind
	ev     sseupstream.Event
	name   string
	reason sseupstream.Reason
	err    error
}

// streamObserver forwards one stream's callbacks to its feed's goroutine.
type streamObserver struct {
	f    *feed
	gen  uint64
	quit <-chan struct{}
	// told: an event went to the feed since the stream last came up, so
	// the feed will hold it healthy, and a ping has nothing more to tell
	// it. The stream's goroutine makes the calls; atomic all the same, so
	// an observer driven from two goroutines (as tests' fake streams are)
	// is still sound.
	told atomic.Bool
}

func (o *streamObserver) send(m streamMsg) {
	m.gen = o.gen
	select {
	case o.f.streamCh <- m:
	case <-o.quit:
	case <-o.f.ctx.Done():
	}
}

func (o *streamObserver) StreamUp(int64) {
	o.told.Store(false)
	o.send(streamMsg{kind: msgUp})
}

// StreamEvent hands ev to the feed, but for the pings of a stream the feed
// holds healthy already: they are only counted (Hooks.StreamEvent, here).
// A gateway following 1,000 lots gets 1,000 pings a second, and each woke
// a feed to do nothing, between the closing lots' events.
func (o *streamObserver) StreamEvent(ev sseupstream.Event) {
	if ev.Kind == sseupstream.Ping && o.told.Load() {
		if hook := o.f.h.hooks.StreamEvent; hook != nil {
			hook(o.f.id, ev.Kind)
		}
		return
	}
	o.told.Store(true)
	o.send(streamMsg{kind: msgEvent, ev: ev})
}

func (o *streamObserver) StreamDecodeError(_ int64, name string, err error) {
	o.send(streamMsg{kind: msgDecodeError, name: name, err: err})
}

func (o *streamObserver) StreamDown(_ int64, reason sseupstream.Reason, err error, _ time.Duration) {
	o.told.Store(false)
	o.send(streamMsg{kind: msgDown, reason: reason, err: err})
}

var _ sseupstream.Observer = (*streamObserver)(nil)

// syncStream opens or closes the stream to match the config, the breaker,
// the lot and the slot the hub grants it. A stream the hub takes back for a
// lot that needs it more is closed and a snapshot heals whatever it would
// have brought next; the feed then polls.
func (f *feed) syncStream() {
	isOver := over(&f.product)
	want := f.acting() && f.followsSSE() && f.breaker.AllowStream() && !isOver
	healthy := f.live != nil && f.live.healthy
	granted := f.h.claim(f, want, isOver, healthy, f.product.CloseTime)
	if !want {
		f.closeStream()
		f.capped = false
		return
	}
	if !granted {
		if f.live != nil {
			f.log.Debug("stream given up to a lot that needs it more; polling")
			f.closeStream()
			f.startFetch(fetchReconcile)
		}
		if !f.capped {
			// Debug: at auction-night scale thousands of lots wait; the
			// poll budget's warning speaks for all of them.
			f.log.Debug("no stream slot free; polling only", zap.Int("max_streams", f.cfg.MaxStreams))
		}
		f.capped = true
		return
	}
	f.capped = false
	if f.live != nil {
		return
	}
	if f.breaker.State() == fallback.BreakerClosed {
		// A fresh stream gets a fresh judgement; a half-open probe keeps
		// the breaker that allowed it.
		f.breaker = f.newBreaker()
	}
	if f.streamCh == nil {
		f.streamCh = make(chan streamMsg, streamRoom) // before the stream's goroutine starts
	}
	f.h.hold(f, true)
	f.nextGen++
	quit := make(chan struct{})
	l := &liveStream{gen: f.nextGen, quit: quit}
	l.stream = f.h.openStream(f.cfg.SSE, f.id, &streamObserver{f: f, gen: l.gen, quit: quit})
	f.live = l
	f.mu.Lock()
	f.stream = l.stream
	f.mu.Unlock()
}

func (f *feed) closeStream() {
	if f.live == nil {
		return
	}
	wasHealthy := f.live.healthy
	lastByte := f.live.stream.LastByte()
	close(f.live.quit)
	f.live.stream.Close()
	f.live = nil
	f.mu.Lock()
	f.stream = nil
	if wasHealthy && lastByte.After(f.streamedUntil) {
		// A lot that loses its stream is as fresh as the stream's last
		// byte, not as its last snapshot: a streamed lot's own polls
		// are insurance, which a short budget never serves.
		f.streamedUntil = lastByte
	}
	f.mu.Unlock()
	f.h.hold(f, false)
	if wasHealthy {
		f.replan(f.h.clock.Now())
	}
}

// handleStreamBacklog handles m and the stream messages already waiting
// behind it. A feed that fell behind its stream (its deliveries to
// thousands of sockets take longer than Nellis's events take to arrive)
// merges the waiting events and publishes the newest state once: every
// subscriber gets the current price now rather than each older one later,
// as a slow socket's queue keeps only the newest state of a lot (wsconn).
// A feed that keeps up never has a backlog and publishes every event.
func (f *feed) handleStreamBacklog(m streamMsg) {
	backlog := len(f.streamCh)
	if backlog == 0 {
		f.handleStream(m)
		return
	}
	f.held = &heldChange{}
	f.handleStream(m)
	for range backlog {
		f.handleStream(<-f.streamCh)
	}
	f.publishHeld()
}

// heldChange is what the stream's last merged event would have published.
type heldChange struct {
	due        bool
	src        Source
	receivedAt time.Time
}

// publishHeld publishes the held change, if any, and stops holding.
func (f *feed) publishHeld() {
	h := f.held
	f.held = nil
	if h != nil && h.due && f.acting() {
		f.publish(h.src, h.receivedAt, nil)
	}
}

func (f *feed) handleStream(m streamMsg) {
	l := f.live
	if l == nil || m.gen != l.gen {
		return // from a stream already closed
	}
	now := f.h.clock.Now()
	hooks := &f.h.hooks
	switch m.kind {
	case msgUp:
		l.up, l.healthy = true, false
		if hooks.StreamUp != nil {
			hooks.StreamUp(f.id)
		}
		// The stream never replays what happened while it was down.
		f.startFetch(fetchReconcile)
	case msgEvent:
		if hooks.StreamEvent != nil {
			hooks.StreamEvent(f.id, m.ev.Kind)
		}
		if l.up && !l.healthy {
			l.healthy = true
			f.breaker.Healthy(now)
			f.replan(now)
		}
		if m.ev.Kind == sseupstream.Bid || m.ev.Kind == sseupstream.Closed {
			at := m.ev.ReceivedAt
			if at.IsZero() {
				at = now
			}
			m.ev.Patch.User = nil // a live event is nobody's
			f.apply(&m.ev.Patch, nil, at, SourceSSE)
		}
	case msgDecodeError:
		if hooks.StreamDecodeError != nil {
			hooks.StreamDecodeError(f.id, m.name)
		}
		// The first bad payload is news; the rest are counted by the hook.
		f.decodeErrors++
		level := zap.DebugLevel
		if f.decodeErrors == 1 {
			level = zap.WarnLevel
		}
		if ce := f.log.Check(level, "upstream event not decodable"); ce != nil {
			ce.Write(zap.String("event", m.name), zap.Int("count", f.decodeErrors), zap.Error(m.err))
		}
	case msgDown:
		wasHealthy := l.healthy
		l.up, l.healthy = false, false
		if hooks.StreamDown != nil {
			hooks.StreamDown(f.id, m.reason)
		}
		f.log.Debug("stream down", zap.String("reason", string(m.reason)), zap.Error(m.err))
		f.breaker.Failed(now)
		if m.reason == sseupstream.ReasonStall && f.breaker.State() != fallback.BreakerOpen {
			// (An opening breaker has already asked for one.)
			// Events may have been lost in the silence before the stall.
			f.startFetch(fetchReconcile)
		}
		if wasHealthy {
			f.replan(now)
		}
	}
}
