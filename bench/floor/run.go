package floor

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/nellis-edge/gateway/nellissim"
)

// The process's protocol, one JSON line each way on stdin and stdout, as
// the load generator's (bench/loadgen/protocol.go):
//
//	floor → driver  Hello   once listening
//	driver → floor  Order   the schedule to play
//	floor → driver  Played  once it is played
//
// Orders may follow one another; stdin's end, or ctx's, ends the process.

// Hello says where the clients connect.
type Hello struct {
	URL string `json:"url"`
}

// Order is a schedule to play: until and spin as Play's.
type Order struct {
	Schedule nellissim.Schedule `json:"schedule"`
	Until    time.Time          `json:"until"`
	Spin     time.Duration      `json:"spin"`
}

// Run listens on addr (host:port; port 0 picks one), writes Hello to out
// and plays each Order read from in, answering Played, until in ends or
// ctx does. Every socket is closed and every goroutine it started has
// ended when it returns. With tlsConf the clients connect over TLS
// (wss://), which Go's crypto/tls terminates in this process: the floor of
// what a TLS socket costs, to stand beside the gateway's TLS figures.
func Run(ctx context.Context, addr string, tlsConf *tls.Config, in io.Reader, out io.Writer) (err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	scheme := "ws"
	if tlsConf != nil {
		ln, scheme = tls.NewListener(ln, tlsConf), "wss"
	}
	s := New()
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Closing the sockets as soon as the run ends also frees a fan-out
	// goroutine blocked writing to a client that stopped reading.
	stopClosing := context.AfterFunc(ctx, s.Close)
	defer func() {
		stopClosing()
		hs.Close()
		if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
			err = serveErr
		}
		s.Close()
	}()

	enc := json.NewEncoder(out)
	if err := enc.Encode(Hello{URL: scheme + "://" + ln.Addr().String() + "/ws"}); err != nil {
		return fmt.Errorf("write hello: %w", err)
	}
	orders := readOrders(ctx, in, cancel)
	for {
		var o Order
		select {
		case <-ctx.Done():
			return nil
		case line := <-orders:
			if err := json.Unmarshal(line, &o); err != nil {
				return fmt.Errorf("read order: %w", err)
			}
		}
		played, err := s.Play(ctx, o.Schedule, o.Until, o.Spin)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := enc.Encode(played); err != nil {
			return fmt.Errorf("write played: %w", err)
		}
	}
}

// readOrders delivers in's lines until ctx ends; at in's end (or an
// error) it cancels the run. The goroutine ends with in: in a process,
// with stdin's close or the process itself.
func readOrders(ctx context.Context, in io.Reader, cancel context.CancelFunc) <-chan []byte {
	lines := make(chan []byte)
	go func() {
		defer cancel()
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- append([]byte(nil), sc.Bytes()...):
			case <-ctx.Done():
				return
			}
		}
	}()
	return lines
}
