package module

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The hostile-client suite (issue 11): strangers who never sign in, who
// begin a message and never finish it, who guess tokens. Each comes from
// loopback addresses of its own (Linux routes all of 127.0.0.0/8 to lo),
// so the per-address limits apply as they would to many hosts, while the
// real client comes from 127.0.0.1.

// hostileAddrs are the attackers' 34 source addresses, 127.0.0.2-35.
var hostileAddrs = func() []string {
	addrs := make([]string, 34)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	return addrs
}()

// dialerFrom dials the gateway from source address ip, with small buffers:
// the attacker's sockets cost the test process little.
func dialerFrom(ip string) *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext,
		HandshakeTimeout: 5 * time.Second,
		ReadBufferSize:   512,
		WriteBufferSize:  512,
	}
}

// dialFrom opens a socket from ip; it is closed when the test ends. A
// refusal is returned as its HTTP status.
func dialFrom(t *testing.T, ip string) (*websocket.Conn, int, error) {
	h := http.Header{}
	h.Set("Origin", testOrigin)
	conn, res, err := dialerFrom(ip).Dial(gatewayWS, h)
	if err != nil {
		if res != nil {
			return nil, res.StatusCode, nil
		}
		return nil, 0, err
	}
	t.Cleanup(func() { conn.Close() })
	return conn, http.StatusSwitchingProtocols, nil
}

// closedWithin reads conn until it ends and returns the close frame the
// gateway sent, or nil if it sent none within d.
func closedWithin(conn *websocket.Conn, d time.Duration) *websocket.CloseError {
	_, err := readUntilEnd(conn, d)
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

// TestHostileIdleSockets: 1,000 sockets from 34 addresses that never sign
// in. The per-address cap refuses most of them (429), the rest are closed
// at the authentication deadline with 1008 and a reason, and meanwhile a
// real client from another address connects, signs in and gets its first
// auctionState in under a second.
func TestHostileIdleSockets(t *testing.T) {
	leavesNoGoroutine(t)
	const (
		attempts = 1000
		// authTimeout outlasts the flood even on a loaded machine (it took
		// 2.5 s under a parallel build): sockets closed while it runs would
		// let an address open more than its share.
		authTimeout = 5 * time.Second
	)
	r := newRig(t, "auth_timeout 5s")
	before := scrape(t)

	type result struct {
		conns  []*websocket.Conn
		status map[int]int
		err    error
	}
	results := make([]result, len(hostileAddrs))
	var wg sync.WaitGroup
	started := time.Now()
	for i, ip := range hostileAddrs {
		wg.Go(func() {
			res := result{status: map[int]int{}}
			for n := i; n < attempts; n += len(hostileAddrs) {
				conn, status, err := dialFrom(t, ip)
				if err != nil {
					res.err = err
					break
				}
				res.status[status]++
				if conn != nil {
					res.conns = append(res.conns, conn)
				}
			}
			results[i] = res
		})
	}
	wg.Wait()
	flooded := time.Since(started)
	var idle []*websocket.Conn
	status := map[int]int{}
	for i, res := range results {
		if res.err != nil {
			t.Fatalf("attacker %s: %v", hostileAddrs[i], res.err)
		}
		idle = append(idle, res.conns...)
		for s, n := range res.status {
			status[s] += n
		}
		if len(res.conns) > 8 {
			t.Errorf("attacker %s holds %d unauthenticated sockets, want at most 8", hostileAddrs[i], len(res.conns))
		}
	}
	t.Logf("%d attempts from %d addresses in %v: %v (status: count)", attempts, len(hostileAddrs), flooded.Round(time.Millisecond), status)
	if status[http.StatusServiceUnavailable] != 0 {
		t.Errorf("%d attempts got 503: the attackers filled max_unauthenticated", status[http.StatusServiceUnavailable])
	}
	if status[http.StatusTooManyRequests] == 0 {
		t.Error("no attempt was refused with 429")
	}

	// The real extension, from 127.0.0.1, while the idle sockets are open.
	start := time.Now()
	ext, res, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatalf("the real client could not connect during the flood: %v (%v)", err, res)
	}
	ext.send(map[string]any{"type": "authenticate", "token": testToken, "requestId": "req_1"})
	if m := ext.next("authenticated", time.Second, nil); m["success"] != true {
		t.Fatalf("authenticate: %v", m)
	}
	ext.send(map[string]any{
		"type": "startMonitoring", "auctionId": fmt.Sprint(r.id), "requestId": "req_2",
		"config":   map[string]any{"maxBid": 5, "strategy": "sniping", "incrementAmount": 1, "autoBid": false},
		"metadata": map[string]any{"source": "test", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", r.id)},
	})
	ext.next("auctionState", time.Second, func(m map[string]any) bool {
		a, _ := m["auction"].(map[string]any)
		return a["id"] == fmt.Sprint(r.id)
	})
	took := time.Since(start)
	t.Logf("the real client connected, signed in and got its first auctionState in %v", took.Round(time.Millisecond))
	if took >= time.Second {
		t.Errorf("the real client took %v, want under 1s", took)
	}

	// Every idle socket is closed at the deadline, with a reason.
	closes := make([]*websocket.CloseError, len(idle))
	for i, conn := range idle {
		wg.Go(func() { closes[i] = closedWithin(conn, authTimeout+3*time.Second) })
	}
	wg.Wait()
	bad := 0
	for _, ce := range closes {
		if ce == nil || ce.Code != websocket.ClosePolicyViolation || ce.Text != "authentication timeout" {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d idle sockets were not closed with 1008 \"authentication timeout\"", bad, len(idle))
	}
	grewBy(t, before, closedWith("1008"), float64(len(idle)))
	r.healthyAfter(t, "1,000 idle sockets")
}

// footprint is the process's resident set (caddytest runs Caddy in this
// process) and, to tell where it goes, its Go heap and stacks in use; all
// after a collection, so that they count what is held.
type footprint struct{ rss, heap, stacks int64 }

func measure(t *testing.T) footprint {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f := footprint{heap: int64(ms.HeapInuse), stacks: int64(ms.StackInuse)}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			f.rss = kb << 10
			return f
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return f
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// firstFragment is a client frame header beginning a text message that
// goes on (FIN clear), masked with a zero key, for a payload of size.
func firstFragment(size int) []byte {
	h := []byte{websocket.TextMessage, 0x80 | 127}
	h = binary.BigEndian.AppendUint64(h, uint64(size))
	return append(h, 0, 0, 0, 0)
}

// clientPing is a client's masked ping frame.
var clientPing = []byte{0x80 | websocket.PingMessage, 0x80 | 1, 0, 0, 0, 0, 'p'}

// TestHostileFragmentPinning: 100 strangers each begin a message and
// never finish it, pinging all the while, and 100 more begin one of
// nearly 1 MiB (max_message_size). The large ones are refused at their
// first frame (1009: too large before sign-in); the small ones are closed
// at the message deadline though their pings keep them talking; and all
// of them together hold well under 10 MiB of the gateway's memory.
func TestHostileFragmentPinning(t *testing.T) {
	leavesNoGoroutine(t)
	const (
		sockets        = 100
		messageTimeout = 2 * time.Second
		small          = 3 << 10            // under the 4 KiB limit before sign-in
		large          = 1<<20 - (16 << 10) // under max_message_size
	)
	r := newRig(t, "message_timeout 2s\n\t\tauth_timeout 30s")

	open := func(n int) []*websocket.Conn {
		conns := make([]*websocket.Conn, 0, n)
		for i := range n {
			ip := hostileAddrs[i%len(hostileAddrs)]
			conn, status, err := dialFrom(t, ip)
			if err != nil || conn == nil {
				t.Fatalf("socket %d from %s: %d %v", i, ip, status, err)
			}
			conns = append(conns, conn)
		}
		return conns
	}
	var wg sync.WaitGroup
	// The test's own buffers are made once, so that the second round
	// allocates nothing large on the client's side of the process.
	payload := make([]byte, large)
	attack := func() (slow, big []*websocket.Conn) {
		slow, big = open(sockets), open(sockets)
		for _, conn := range slow {
			if _, err := conn.NetConn().Write(append(firstFragment(small), payload[:small]...)); err != nil {
				t.Fatalf("first fragment: %v", err)
			}
		}
		for _, conn := range big {
			wg.Go(func() {
				// The gateway may close the socket before it is all written.
				if _, err := conn.NetConn().Write(firstFragment(large)); err == nil {
					_, _ = conn.NetConn().Write(payload)
				}
			})
		}
		wg.Wait()
		return slow, big
	}
	// A first round, ended by the client, leaves the process (and, under
	// the race detector, its bookkeeping) as large as serving such sockets
	// makes it; the second round is measured against it, so what it adds
	// is what those sockets hold.
	slow, big := attack()
	time.Sleep(300 * time.Millisecond)
	for _, conn := range append(slow, big...) {
		conn.Close()
	}
	eventually(t, 5*time.Second, "the first round's sockets to end", func() bool {
		return scrape(t).get(t, "nellis_ws_connections_open") == 1
	})
	before := scrape(t)
	base := measure(t)
	begun := time.Now()
	slow, big = attack()
	// Pings on every socket, every 200 ms, until each ends.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	pinger := make(chan struct{})
	go func() {
		defer close(pinger)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, conn := range append(slow[:len(slow):len(slow)], big...) {
				_, _ = conn.NetConn().Write(clientPing)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	time.Sleep(messageTimeout / 2)
	now := measure(t)
	held := now.rss - base.rss
	// Under the race detector each goroutine (a pinned socket has its
	// reader) costs tens of KiB of the detector's own memory besides.
	t.Logf("%d sockets with a message begun and %d that tried nearly 1 MiB: RSS grew by %.1f MiB (Go heap %+.1f MiB, stacks %+.1f MiB)",
		sockets, sockets, mib(held), mib(now.heap-base.heap), mib(now.stacks-base.stacks))
	if held > 10<<20 {
		t.Errorf("RSS grew by %.1f MiB, want under 10 MiB", mib(held))
	}

	// ended reads each socket until it ends and counts those that did not
	// end as ok says.
	ended := func(conns []*websocket.Conn, within time.Duration, ok func(error) bool) (bad int) {
		t.Helper()
		errs := make([]error, len(conns))
		for i, conn := range conns {
			wg.Go(func() { _, errs[i] = readUntilEnd(conn, within) })
		}
		wg.Wait()
		for _, err := range errs {
			if !ok(err) {
				bad++
			}
		}
		return bad
	}
	// The large ones were cut at their first frame's header: the close
	// frame (1009, counted below) may be lost to the reset that the
	// unread rest of the frame causes.
	if bad := ended(big, 2*time.Second, func(err error) bool { return !isTimeout(err) }); bad > 0 {
		t.Errorf("%d of %d sockets that began a message of nearly 1 MiB were still open", bad, sockets)
	}
	if bad := ended(slow, messageTimeout+3*time.Second, func(err error) bool {
		var ce *websocket.CloseError
		return errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation && ce.Text == "message timeout"
	}); bad > 0 {
		t.Errorf("%d of %d sockets with a message begun were not closed with 1008 \"message timeout\"", bad, sockets)
	}
	if took := time.Since(begun); took < messageTimeout {
		t.Errorf("the message deadline closed the sockets after %v, before message_timeout", took)
	}
	stop()
	<-pinger
	grewBy(t, before, closedWith("1008"), sockets)
	grewBy(t, before, closedWith("1009"), sockets)
	r.healthyAfter(t, "fragment pinning")
}

// restFrom is an HTTP client whose requests come from source address ip.
func restFrom(ip string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext,
		DisableKeepAlives: true,
	}}
}

func statusWith(t *testing.T, c *http.Client, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, gatewayAPIStatus, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /api/status: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestHostileTokenGuessing: a socket guessing tokens is answered, then
// closed with 1008 after auth_failures tries; the address's budget
// (auth_failures_per_minute) is shared with REST, which answers 429 once
// it is spent, to the right token too; other addresses are untouched.
func TestHostileTokenGuessing(t *testing.T) {
	leavesNoGoroutine(t)
	r := newRig(t, "auth_failures 3\n\t\tauth_failures_per_minute 5")
	before := scrape(t)
	const guesser = "127.0.0.36"

	conn, _, err := dialFrom(t, guesser)
	if err != nil || conn == nil {
		t.Fatalf("dial: %v", err)
	}
	guess := &extension{t: t, conn: conn}
	for i := range 3 {
		guess.send(map[string]any{"type": "authenticate", "token": fmt.Sprintf("guess-%04d-%012d", i, i), "requestId": "g"})
		if m := guess.next("authenticated", 3*time.Second, nil); m["success"] != false {
			t.Fatalf("guess %d: %v", i, m)
		}
	}
	if ce := closedWithin(conn, 3*time.Second); ce == nil || ce.Code != websocket.ClosePolicyViolation || ce.Text != "too many failed authentication attempts" {
		t.Errorf("after 3 guesses the socket ended with %v, want 1008 \"too many failed authentication attempts\"", ce)
	}

	rest := restFrom(guesser)
	for i := range 2 { // the budget's last two
		if s := statusWith(t, rest, fmt.Sprintf("rest-guess-%d-0123456789", i)); s != http.StatusUnauthorized {
			t.Errorf("REST guess %d: %d, want 401", i, s)
		}
	}
	if s := statusWith(t, rest, "rest-guess-x-0123456789"); s != http.StatusTooManyRequests {
		t.Errorf("REST guess past the budget: %d, want 429", s)
	}
	if s := statusWith(t, rest, testToken); s != http.StatusTooManyRequests {
		t.Errorf("the right token from the guessing address: %d, want 429 without a check", s)
	}
	// A new socket from there is closed at its first authenticate.
	conn, _, err = dialFrom(t, guesser)
	if err != nil || conn == nil {
		t.Fatalf("dial: %v", err)
	}
	again := &extension{t: t, conn: conn}
	again.send(map[string]any{"type": "authenticate", "token": testToken, "requestId": "g"})
	if m := again.next("authenticated", 3*time.Second, nil); m["success"] != false {
		t.Errorf("sign-in from the guessing address: %v", m)
	}
	if ce := closedWithin(conn, 3*time.Second); ce == nil || ce.Code != websocket.ClosePolicyViolation {
		t.Errorf("the socket ended with %v, want 1008", ce)
	}
	// Everyone else is untouched.
	if n := userConnections(t); n != 1 {
		t.Errorf("/api/status from 127.0.0.1 counts %d connections, want the rig's 1", n)
	}
	grewBy(t, before, closedWith("1008"), 2)
	r.healthyAfter(t, "token guessing")
}
