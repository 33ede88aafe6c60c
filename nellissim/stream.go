package nellissim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// stream is one open `/live-products` response. Its handler goroutine (the
// HTTP server's) owns the writes; everyone else only queues frames, kicks it
// or cuts it.
type stream struct {
	lot    *lot
	frames chan []byte   // events waiting to be written
	kicked chan struct{} // closed to end the response cleanly
	kick   sync.Once

	mu sync.Mutex // orders write deadlines against cut
	rc *http.ResponseController
	// cutRC controls the server's own ResponseWriter, under any wrappers:
	// cut runs on another goroutine than the handler, and a wrapper (Caddy
	// keeps the handler's deadline in a field of its writer) is not safe
	// for that, while net/http's writers are.
	cutRC *http.ResponseController
	dead  bool // cut, or its handler returning: rc is not touched again
}

// innermost unwraps w down to the server's own ResponseWriter.
func innermost(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

var errStreamCut = errors.New("stream cut")

func (st *stream) end() { st.kick.Do(func() { close(st.kicked) }) }

// cut expires the connection's write deadline so a write blocked on a client
// that does not read fails now. A stream whose handler has returned is left
// alone: over h2 its ResponseWriter is gone and setting a deadline on it
// panics.
func (st *stream) cut() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.dead {
		return
	}
	st.dead = true
	_ = st.cutRC.SetWriteDeadline(time.Now())
}

// write sends b and flushes it, failing if the client does not take it
// within streamWriteTimeout.
func (st *stream) write(w http.ResponseWriter, b []byte) error {
	st.mu.Lock()
	if st.dead {
		st.mu.Unlock()
		return errStreamCut
	}
	// Not every ResponseWriter supports deadlines; then a stuck client
	// holds its handler until the server closes the connection.
	_ = st.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	st.mu.Unlock()
	if _, err := w.Write(b); err != nil {
		return err
	}
	return st.rc.Flush()
}

// serveLiveProducts is `GET /live-products?productId={id}`.
func (s *Simulator) serveLiveProducts(w http.ResponseWriter, r *http.Request) {
	id, err := parseProductID(r.URL.Query().Get("productId"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	st, hello, status := s.openStream(id, w)
	if st == nil {
		http.Error(w, http.StatusText(status), status)
		return
	}
	defer s.closeStream(st)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := st.write(w, hello); err != nil {
		return
	}
	for {
		select {
		case <-s.done:
			return
		case <-r.Context().Done():
			return
		case <-st.kicked:
			return
		case frame := <-st.frames:
			// A stalled server keeps the socket and loses the events.
			if s.stalled(st.lot) {
				continue
			}
			if err := s.send(w, r, st, frame); err != nil {
				if !errors.Is(err, errStreamCut) {
					s.logger.Debug("stream write failed", zap.Int64("product_id", id), zap.Error(err))
				}
				return
			}
		}
	}
}

// openStream registers a new stream for the lot, or says which status to
// answer instead. hello is the stream's first bytes: the optional BOM and
// the `connected` event.
func (s *Simulator) openStream(id int64, w http.ResponseWriter) (*stream, []byte, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, http.StatusServiceUnavailable
	}
	l, ok := s.byID[id]
	if !ok {
		return nil, nil, http.StatusNotFound
	}
	l.stats.StreamRequests++
	if status := l.faults.failStreams.take(); status != 0 {
		return nil, nil, status
	}
	if status := s.faults.failStreams.take(); status != 0 {
		return nil, nil, status
	}
	st := &stream{
		lot:    l,
		frames: make(chan []byte, streamBuffer),
		kicked: make(chan struct{}),
		rc:     http.NewResponseController(w),
		cutRC:  http.NewResponseController(innermost(w)),
	}
	l.streams[st] = struct{}{}
	s.live[st] = struct{}{}
	l.stats.StreamsOpened++
	s.wg.Add(1)

	var hello []byte
	if s.wire.BOM {
		hello = append(hello, utf8BOM...)
	}
	hello = append(hello, s.wire.event("", connectedData(s.newUUIDLocked(), 0xc000000000+s.rng.Uint64N(1<<28)*16))...)
	return st, hello, 0
}

func (s *Simulator) closeStream(st *stream) {
	s.mu.Lock()
	delete(st.lot.streams, st)
	delete(s.live, st)
	s.mu.Unlock()
	st.mu.Lock()
	if !st.dead {
		// The connection may serve further requests: lift our deadline.
		_ = st.rc.SetWriteDeadline(time.Time{})
	}
	st.dead = true // the handler returns: nothing may touch rc after this
	st.mu.Unlock()
	s.wg.Done()
}

// send writes one frame, byte by byte with pauses when SlowDrip is on.
func (s *Simulator) send(w http.ResponseWriter, r *http.Request, st *stream, frame []byte) error {
	if !s.dripping(st.lot) {
		return st.write(w, frame)
	}
	t := time.NewTimer(s.dripInterval)
	defer t.Stop()
	for i := range frame {
		if err := st.write(w, frame[i:i+1]); err != nil {
			return err
		}
		if i == len(frame)-1 {
			break
		}
		t.Reset(s.dripInterval)
		select {
		case <-t.C:
		case <-s.done:
			return errStreamCut
		case <-r.Context().Done():
			return r.Context().Err()
		case <-st.kicked:
			return errStreamCut
		}
	}
	return nil
}

// broadcastLocked queues a frame on every stream of the lot. A stream whose
// queue is full cannot keep up and is dropped, as a real server would.
func (s *Simulator) broadcastLocked(l *lot, frame []byte) {
	for st := range l.streams {
		select {
		case st.frames <- frame:
		default:
			delete(l.streams, st)
			l.stats.StreamsDropped++
			st.end()
		}
	}
}

// newUUIDLocked draws a version 4 UUID from the seeded generator.
func (s *Simulator) newUUIDLocked() string {
	hi, lo := s.rng.Uint64(), s.rng.Uint64()
	hi = hi&^0xf000 | 0x4000
	lo = lo&^(0xc<<60) | 0x8<<60
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", hi>>32, (hi>>16)&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// parseProductID reads a Nellis product id: a positive decimal integer.
func parseProductID(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("productId is required")
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("productId %q is not a positive integer", truncate(s, 32))
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
