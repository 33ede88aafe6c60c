package sseupstream

import (
	"io"
	"sync/atomic"
	"time"
)

// activityReader sits between the raw response body and the library's
// event reader. It does three things the library cannot:
//
//   - It stamps the time of every read that returned bytes, before any
//     parsing, so pings, comments and half-received events all prove the
//     stream alive to the stall watchdog; and the time of every read that
//     completed a line, so a stream that only trickles (bytes, but no
//     whole line for a long time) can be told from a live one.
//   - It drops comment lines (":" at the start of a line, with their line
//     end). The library would glue them to the next event, so a server that
//     sends ":\n" keep-alives without blank lines would grow one endless
//     "event" until it hit MaxEventSize; and comments never count towards an
//     event's size.
//   - It remembers whether the body ended inside an event (content after the
//     last blank line). The library hands such a fragment over as if it were
//     a complete event; the event-stream format says to discard it.
//
// It is used by one goroutine; only the last-byte stamp is shared.
type activityReader struct {
	body     io.Reader
	now      func() time.Time
	lastByte *atomic.Int64 // UnixNano of the last read that returned bytes
	lastLine *atomic.Int64 // UnixNano of the last read that ended a line

	lineEnded bool // filter saw a line end in the current read

	lineStart bool // the next byte starts a line
	inComment bool // dropping a comment line
	skipLF    bool // a comment line ended in CR: drop an LF right after it
	prevCR    bool // the last byte passed on was a CR: an LF after it ends no new line
	pending   bool // content passed on since the last blank line
	ended     bool // the body returned an error or EOF
}

func newActivityReader(body io.Reader, now func() time.Time, lastByte, lastLine *atomic.Int64) *activityReader {
	return &activityReader{body: body, now: now, lastByte: lastByte, lastLine: lastLine, lineStart: true}
}

// Read fills p with the body's bytes minus comment lines. It never returns
// 0, nil: bufio.Scanner gives up after 100 empty reads, and a stream of
// comments alone would produce exactly that.
func (a *activityReader) Read(p []byte) (int, error) {
	for {
		n, err := a.body.Read(p)
		if n > 0 {
			at := a.now().UnixNano()
			a.lastByte.Store(at)
			a.lineEnded = false
			n = a.filter(p[:n])
			if a.lineEnded {
				a.lastLine.Store(at)
			}
		}
		if err != nil {
			a.ended = true
		}
		if n > 0 || err != nil || len(p) == 0 {
			return n, err
		}
	}
}

// filter removes comment lines from b in place and tracks event
// boundaries. Its state carries over between reads, since a line may be
// split across them.
func (a *activityReader) filter(b []byte) int {
	out := b[:0]
	for _, c := range b {
		if a.inComment {
			if c == '\r' || c == '\n' {
				a.inComment = false
				a.skipLF = c == '\r'
				a.lineEnded = true
			}
			continue
		}
		if a.skipLF {
			a.skipLF = false
			if c == '\n' {
				continue
			}
		}
		switch {
		case c == '\n' && a.prevCR:
			// The second half of a CRLF.
			a.prevCR = false
		case c == '\r' || c == '\n':
			if a.lineStart {
				a.pending = false // a blank line: the event is complete
			}
			a.lineStart = true
			a.lineEnded = true
			a.prevCR = c == '\r'
		case a.lineStart && c == ':':
			a.inComment = true
			a.prevCR = false
			continue
		default:
			a.pending = true
			a.lineStart = false
			a.prevCR = false
		}
		out = append(out, c)
	}
	return len(out)
}

// endedMidEvent reports whether the body has ended with an incomplete event
// after the last blank line.
func (a *activityReader) endedMidEvent() bool { return a.ended && a.pending }
