package floor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/bench/benchcert"
	"github.com/nellis-edge/gateway/bench/loadgen"
	"github.com/nellis-edge/gateway/nellissim"
)

// pipedRun is a Run (the floor's or the load generator's) fed through
// pipes, as the driver feeds their processes.
type pipedRun struct {
	in   *io.PipeWriter
	out  *json.Decoder
	done chan error
}

func startPiped(t *testing.T, run func(in io.Reader, out io.Writer) error) *pipedRun {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &pipedRun{in: inW, out: json.NewDecoder(outR), done: make(chan error, 1)}
	go func() {
		err := run(inR, outW)
		outW.Close()
		inR.Close()
		p.done <- err
	}()
	return p
}

func (p *pipedRun) send(t *testing.T, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func (p *pipedRun) next(t *testing.T, v any) {
	t.Helper()
	if err := p.out.Decode(v); err != nil {
		t.Fatalf("read: %v", err)
	}
}

// end closes its stdin and expects a clean return.
func (p *pipedRun) end(t *testing.T) {
	t.Helper()
	p.in.Close()
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not end within 10s of stdin's close")
	}
}

// The load generator itself sets its clients up against the floor and
// measures a schedule the floor plays: every scheduled change reaches every
// client, and the load generator's parser accepts each. In TLS mode the
// floor serves wss:// with the bench's certificate, which the load
// generator verifies.
func TestLoadgenMeasuresFloor(t *testing.T) {
	t.Run("plain", func(t *testing.T) { measureFloor(t, nil, "", "ws://") })
	t.Run("tls", func(t *testing.T) {
		files, err := benchcert.Write(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			t.Fatal(err)
		}
		measureFloor(t, &tls.Config{Certificates: []tls.Certificate{pair}}, files.Cert, "wss://")
	})
}

func measureFloor(t *testing.T, tlsConf *tls.Config, caFile, scheme string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fl := startPiped(t, func(in io.Reader, out io.Writer) error { return Run(ctx, "127.0.0.1:0", tlsConf, in, out) })
	defer fl.end(t)
	var hello Hello
	fl.next(t, &hello)
	if !strings.HasPrefix(hello.URL, scheme) {
		t.Fatalf("hello %q, want a %s URL", hello.URL, scheme)
	}

	products := []int64{7, 8, 9}
	const clients = 4
	lg := startPiped(t, func(in io.Reader, out io.Writer) error {
		return loadgen.Run(ctx, loadgen.Options{URL: hello.URL, CAFile: caFile, Secret: "s", Clients: clients, Products: products}, in, out)
	})
	defer lg.end(t)
	var ready loadgen.Ready
	lg.next(t, &ready)
	if ready.Connected != clients {
		t.Fatalf("ready: %+v", ready)
	}

	start := time.Now().Add(100 * time.Millisecond)
	sc := nellissim.Schedule{Start: start, Rate: 100, Products: products, BasePrice: 1000}
	plan := loadgen.Plan{Schedule: sc, MeasureFrom: start, MeasureUntil: start.Add(300 * time.Millisecond),
		DrainUntil: start.Add(600 * time.Millisecond)}
	lg.send(t, plan)
	fl.send(t, Order{Schedule: sc, Until: plan.MeasureUntil})
	var played Played
	fl.next(t, &played)
	if played.Emitted != 30 || len(played.Lags) != 30 || played.Clients != clients {
		t.Errorf("played: %d events, %d lags, %d clients; want 30, 30, %d", played.Emitted, len(played.Lags), played.Clients, clients)
	}
	var res loadgen.Result
	lg.next(t, &res)
	if res.Expected != 30*clients || res.Delivered != res.Expected || res.Drops != 0 || res.Duplicates != 0 ||
		res.Sources["floor"] != res.Expected || res.Open != clients {
		t.Errorf("result: %+v", res)
	}
}

// A signal (ctx) ends Run with clients still connected: their sockets are
// closed and nothing is left running (TestMain checks the goroutines).
func TestRunEndsWithClientsConnected(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fl := startPiped(t, func(in io.Reader, out io.Writer) error { return Run(ctx, "127.0.0.1:0", nil, in, out) })
	defer fl.in.Close()
	var hello Hello
	fl.next(t, &hello)
	ws, _, err := websocket.DefaultDialer.Dial(hello.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"authenticate","token":"x","requestId":"r1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"type":"authenticated","success":true,"requestId":"r1"}` {
		t.Fatalf("reply %s, %v", msg, err)
	}
	cancel()
	select {
	case err := <-fl.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not end within 10s of its context")
	}
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("socket still open after Run returned")
	}
}
