package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer is the server's stderr, written by run while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestServesJetStreamAndStopsOnSignal: a client can keep a stream in the
// store, SIGTERM stops the server with no error, and a second start on the
// same store still has the stream (what cluster mode's logs rely on).
func TestServesJetStreamAndStopsOnSignal(t *testing.T) {
	addr := freeAddr(t)
	store := filepath.Join(t.TempDir(), "js")
	start := func() (chan<- os.Signal, <-chan error, *lockedBuffer) {
		sigs := make(chan os.Signal, 1)
		done := make(chan error, 1)
		var log lockedBuffer
		go func() { done <- run([]string{"-listen", addr, "-store", store, "-quiet"}, &log, sigs) }()
		return sigs, done, &log
	}
	connect := func(log *lockedBuffer) *nats.Conn {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(log.String(), "ready on") {
			if time.Now().After(deadline) {
				t.Fatalf("not ready: %s", log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		nc, err := nats.Connect("nats://" + addr)
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
	stop := func(sigs chan<- os.Signal, done <-chan error) {
		t.Helper()
		sigs <- syscall.SIGTERM
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("stopped with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("still running 10s after SIGTERM")
		}
	}

	sigs, done, log := start()
	nc := connect(log)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("JetStream: %v", err)
	}
	if _, err := js.Publish("t.1", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	stop(sigs, done)
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still listening after the stop")
	}

	sigs, done, log = start()
	nc = connect(log)
	defer nc.Close()
	js, err = nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := js.GetLastMsg("T", "t.1")
	if err != nil || string(msg.Data) != "kept" {
		t.Fatalf("after a restart on the same store: %v %v", msg, err)
	}
	stop(sigs, done)
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-listen", "127.0.0.1:4222"}, "-store is required"},
		{[]string{"-store", "x", "-listen", "4222"}, "-listen \"4222\""},
		{[]string{"-store", "x", "-listen", "127.0.0.1:0"}, "the port must be 1 to 65535"},
		{[]string{"-store", "x", "-listen", "127.0.0.1:" + strconv.Itoa(70000)}, "the port must be 1 to 65535"},
		{[]string{"-store", "x", "extra"}, "unexpected arguments"},
	} {
		err := run(tc.args, &bytes.Buffer{}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.args, err, tc.want)
		}
	}
}
