package sseupstream

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/r3labs/sse/v2"
)

// readBlocks runs text through an activityReader and the library's event
// reader with the given buffer limit, returning the blocks and the final
// error. oneByte feeds the text a byte per read, splitting every CRLF and
// comment across reads.
func readBlocks(t *testing.T, text string, limit int, oneByte bool) ([]string, *activityReader, error) {
	t.Helper()
	var body io.Reader = strings.NewReader(text)
	if oneByte {
		body = iotest.OneByteReader(body)
	}
	var last, line atomic.Int64
	activity := newActivityReader(body, time.Now, &last, &line)
	reader := sse.NewEventStreamReader(activity, limit)
	var blocks []string
	for {
		block, err := reader.ReadEvent()
		if err != nil {
			return blocks, activity, err
		}
		if f := parseFrame(block); f.hasData {
			blocks = append(blocks, f.name+"|"+string(f.data))
		}
	}
}

func TestActivityReaderDropsComments(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"comment blocks", ": a\n\ndata: 1\n\n:\n\ndata: 2\n\n", []string{"|1", "|2"}},
		{"comment inside an event", "event: e\n: note\ndata: 1\n: more\ndata: 2\n\n", []string{"e|1\n2"}},
		{"CRLF comment inside an event", "event: e\r\n: note\r\ndata: 1\r\n\r\n", []string{"e|1"}},
		{"CR comment inside an event", "event: e\r: note\rdata: 1\r\r", []string{"e|1"}},
		{"colon later in a line is data", "data: a: b\n\n", []string{"|a: b"}},
		{"comment right after CR of a blank line", "data: 1\r\r:x\r\ndata: 2\r\n\r\n", []string{"|1", "|2"}},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			blocks, _, err := readBlocks(t, tt.text, 1<<10, oneByte)
			if err != io.EOF {
				t.Fatalf("%s: error %v", tt.name, err)
			}
			if strings.Join(blocks, ";") != strings.Join(tt.want, ";") {
				t.Errorf("%s (one byte reads %v): got %q, want %q", tt.name, oneByte, blocks, tt.want)
			}
		}
	}
}

// Keep-alive comments without blank lines must not pile up into one event
// that ends the stream as too large.
func TestActivityReaderCommentsDoNotCountTowardsEventSize(t *testing.T) {
	text := strings.Repeat(":keep-alive\n", 10000) + "data: after\n\n"
	blocks, _, err := readBlocks(t, text, 64, false)
	if err != io.EOF || len(blocks) != 1 || blocks[0] != "|after" {
		t.Fatalf("got %q, %v; want the one event after 110 KB of comments under a 64-byte limit", blocks, err)
	}
}

// A read of nothing but comment bytes must not look like a stalled reader
// to bufio.Scanner, which gives up after 100 empty reads.
func TestActivityReaderNeverReturnsEmptyReads(t *testing.T) {
	text := strings.Repeat(":\n", 500) + "data: x\n\n"
	blocks, _, err := readBlocks(t, text, 1<<10, true)
	if err != io.EOF || len(blocks) != 1 {
		t.Fatalf("got %q, %v", blocks, err)
	}
}

func TestActivityReaderEndedMidEvent(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"data: 1\n\n", false},
		{"data: 1\r\n\r\n", false},
		{"data: 1\n\n: trailing comment\n", false},
		{"data: 1\n\n\n", false},
		{"data: 1\n", true},
		{"data: 1\n\ndata: 2", true},
		{"data: 1\r\n\r", false}, // CR alone ends the blank line
	}
	for _, tt := range tests {
		_, activity, _ := readBlocks(t, tt.text, 1<<10, false)
		if got := activity.endedMidEvent(); got != tt.want {
			t.Errorf("%q: ended mid event %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestActivityReaderStampsEveryRead(t *testing.T) {
	var last, line atomic.Int64
	clock := newFakeClock()
	r := newActivityReader(strings.NewReader(":only a comment\n"), clock.Now, &last, &line)
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read %d, %v: want the comment dropped and EOF", n, err)
	}
	if got := time.Unix(0, last.Load()); !got.Equal(clock.Now()) {
		t.Fatalf("last byte %v, want the comment's read time %v", got, clock.Now())
	}
	if got := time.Unix(0, line.Load()); !got.Equal(clock.Now()) {
		t.Fatalf("last line %v, want the comment's read time %v: a comment line is a whole line", got, clock.Now())
	}
}

// TestActivityReaderStampsLinesOnlyWhenOneEnds: bytes of an unfinished
// line prove the connection alive but not the stream useful.
func TestActivityReaderStampsLinesOnlyWhenOneEnds(t *testing.T) {
	var last, line atomic.Int64
	clock := newFakeClock()
	r := newActivityReader(iotest.OneByteReader(strings.NewReader("data: ping\n\n")), clock.Now, &last, &line)
	buf := make([]byte, 64)
	start := clock.Now()
	for i := range len("data: ping") {
		clock.Advance(time.Second)
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
		if line.Load() != 0 {
			t.Fatalf("after %d bytes of one line, a line was stamped", i+1)
		}
	}
	clock.Advance(time.Second)
	if _, err := r.Read(buf); err != nil {
		t.Fatal(err)
	}
	if got, want := time.Unix(0, line.Load()), start.Add(11*time.Second); !got.Equal(want) {
		t.Fatalf("line stamped at %v, want the newline's read at %v", got, want)
	}
}
