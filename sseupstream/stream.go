package sseupstream

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/r3labs/sse/v2"
	"go.uber.org/zap"
)

// ErrEventTooLarge is reported (wrapped, with the limit) for an event
// longer than Config.MaxEventSize.
var ErrEventTooLarge = errors.New("event too large")

// maxDelimiterLen is the longest blank-line sequence ending an event
// (CRLF CRLF). The library's reader must hold an event and its delimiter
// at once, so its buffer is MaxEventSize plus this.
const maxDelimiterLen = 4

// maxDrainedBody is how much of a refused response is read so that its
// connection can be reused; anything longer is not worth waiting for.
const maxDrainedBody = 4 << 10

// outcome is how one connection attempt ended.
type outcome struct {
	reason Reason
	err    error
	upFor  time.Duration // how long the stream was open; 0 if it never opened
}

// attempt makes one connection and reads it until it ends. failures is the
// number of failed attempts before it, for the log.
func (s *Subscription) attempt(ctx context.Context, cfg Config, failures int) outcome {
	connCtx, cancelConn := context.WithCancel(ctx)
	defer cancelConn()

	resp, out, ok := s.connect(connCtx, cfg)
	if !ok {
		return out
	}
	defer resp.Body.Close()

	connectedAt := s.clock.Now()
	s.lastByte.Store(connectedAt.UnixNano())
	s.lastLine.Store(connectedAt.UnixNano())
	s.up.Store(true)
	defer s.up.Store(false)
	// Debug only: a server that accepts and hangs up at once would
	// otherwise log a line per retry.
	cfg.Logger.Debug("sse stream up", zap.Int64("product_id", s.productID), zap.Int("failures_before", failures))
	s.notify(func() { s.obs.StreamUp(s.productID) })

	// The watchdog belongs to this connection: it ends when the connection
	// does, and the connection is not over until it has.
	var stalled atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.watch(connCtx, cancelConn, &stalled)
	}()
	defer wg.Wait()
	defer cancelConn()

	err := s.read(resp.Body, cfg)
	out = outcome{upFor: s.clock.Now().Sub(connectedAt)}
	switch {
	case ctx.Err() != nil:
		// Closing: nobody is told.
	case stalled.Load():
		out.reason = ReasonStall
		out.err = s.stallError()
	case errors.Is(err, bufio.ErrTooLong):
		out.reason = ReasonTooLarge
		out.err = fmt.Errorf("%w: over %d bytes", ErrEventTooLarge, cfg.MaxEventSize)
		s.decodeError(cfg.Logger, "", out.err)
	case errors.Is(err, io.EOF):
		out.reason = ReasonEOF
	case isCorruptEncoding(err):
		out.reason = ReasonDecode
		out.err = err
	default:
		out.reason = ReasonEOF
		out.err = err
	}
	return out
}

// connect sends the request and accepts only a 200 text/event-stream. When
// ok is false, out says why and no response is left open.
func (s *Subscription) connect(ctx context.Context, cfg Config) (resp *http.Response, out outcome, ok bool) {
	target, err := streamURL(cfg.Endpoint, s.productID)
	if err != nil {
		return nil, outcome{reason: ReasonDial, err: err}, false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, outcome{reason: ReasonDial, err: fmt.Errorf("build request: %w", err)}, false
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err = cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, outcome{reason: ReasonDial, err: err}, false
	}
	if err := checkResponse(resp); err != nil {
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrainedBody)
		resp.Body.Close()
		return nil, outcome{reason: ReasonStatus, err: err}, false
	}
	return resp, outcome{}, true
}

// checkResponse accepts a 200 whose content type is text/event-stream;
// anything else (an error page, a login redirect's HTML) would otherwise be
// read as an event stream that never delivers an event.
func checkResponse(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unexpected status %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	contentType := resp.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "text/event-stream" {
		return fmt.Errorf("unexpected content type %q", contentType)
	}
	return nil
}

// read dispatches the events of body until it ends, returning why.
func (s *Subscription) read(body io.Reader, cfg Config) error {
	activity := newActivityReader(body, s.clock.Now, &s.lastByte, &s.lastLine)
	reader := sse.NewEventStreamReader(activity, cfg.MaxEventSize+maxDelimiterLen)
	first := true
	// held is a block read after the body ended inside an event: it may be
	// that unterminated fragment, which is only known once the reader says
	// nothing follows it. No waiting is involved: the rest is buffered.
	var held []byte
	holding := false
	for {
		block, err := reader.ReadEvent()
		if err != nil {
			if holding {
				cfg.Logger.Debug("sse stream ended inside an event; dropped it",
					zap.Int64("product_id", s.productID), zap.Int("bytes", len(held)))
			}
			return err
		}
		if holding {
			s.dispatch(cfg.Logger, held)
			holding = false
		}
		if first {
			block = bytes.TrimPrefix(block, []byte(utf8BOM))
			first = false
		}
		if activity.endedMidEvent() {
			held, holding = bytes.Clone(block), true
			continue
		}
		s.dispatch(cfg.Logger, block)
	}
}

// dispatch turns one event block into an observer call.
func (s *Subscription) dispatch(logger *zap.Logger, block []byte) {
	f := parseFrame(block)
	if !f.hasData {
		// No data field: the format says such an event is not dispatched.
		return
	}
	ev, err := classify(s.productID, f)
	if err != nil {
		s.decodeError(logger, f.name, err)
		return
	}
	ev.ReceivedAt = s.clock.Now()
	s.lastEvent.Store(ev.ReceivedAt.UnixNano())
	if ev.Kind == Connected && ev.SessionID != "" {
		s.setSessionID(ev.SessionID)
	}
	s.notify(func() { s.obs.StreamEvent(ev) })
}

func (s *Subscription) decodeError(logger *zap.Logger, name string, err error) {
	logger.Warn("bad sse event", zap.Int64("product_id", s.productID), zap.String("event", name), zap.Error(err))
	s.notify(func() { s.obs.StreamDecodeError(s.productID, name, err) })
}

// tricklingFactor: a stream that has sent bytes but no whole line for this
// many stall timeouts is stalled too. Nellis pings every second, so a live
// stream ends a line every second; one dripping a byte at a time keeps the
// byte watchdog quiet while its prices arrive seconds late.
const tricklingFactor = 3

// watch is the stall watchdog of one connection: when no byte has arrived
// for the stall timeout, or no whole line for tricklingFactor of them, it
// marks the connection stalled and cancels it, which unblocks the read.
// Time spent in the observer is not silence (heardAt). It
// re-reads the timeout at every check so a config reload applies to open
// streams.
func (s *Subscription) watch(ctx context.Context, cancelConn context.CancelFunc, stalled *atomic.Bool) {
	for {
		timeout := time.Duration(s.config().StallTimeout)
		byteAt, lineAt, observing := s.heardAt()
		deadline := byteAt.Add(timeout)
		if lines := lineAt.Add(tricklingFactor * timeout); lines.Before(deadline) {
			deadline = lines
		}
		now := s.clock.Now()
		if observing && !deadline.After(now) {
			// Not read while the observer runs: look again a timeout
			// from now, and from the call's return once it returns.
			s.waited.Store(true)
			deadline = now.Add(timeout)
		}
		wait := deadline.Sub(now)
		if wait <= 0 {
			stalled.Store(true)
			cancelConn()
			return
		}
		t := s.clock.NewTimer(deadline)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// stallError says which watchdog ended the stream.
func (s *Subscription) stallError() error {
	timeout := time.Duration(s.config().StallTimeout)
	if unixNanoTime(s.lastByte.Load()).Add(timeout).After(s.clock.Now()) {
		return fmt.Errorf("bytes trickling: no whole line for %s", tricklingFactor*timeout)
	}
	return fmt.Errorf("no byte for %s", timeout)
}

// isCorruptEncoding reports a body that broke in decoding rather than in
// transport: a corrupt gzip or deflate stream.
func isCorruptEncoding(err error) bool {
	var corrupt flate.CorruptInputError
	return errors.As(err, &corrupt) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader)
}
