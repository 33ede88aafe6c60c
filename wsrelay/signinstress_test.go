package wsrelay

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/users"
)

// seen is what one socket has shown of an auction: the change's seq and
// the auto-bid report's number (its message), 0 for none.
type seen struct{ seq, report int }

// listedAuction is an auction object as the messages carry it.
type listedAuction struct {
	ID      string `json:"id"`
	Seq     int    `json:"seq"`
	AutoBid *struct {
		Message string `json:"message"`
	} `json:"autoBid"`
}

func (a listedAuction) seen() seen {
	s := seen{seq: a.Seq}
	if a.AutoBid != nil {
		s.report, _ = strconv.Atoi(a.AutoBid.Message)
	}
	return s
}

// orderWatch reads one socket from its sign-in on and checks the rules
// of what it shows: the answer first, then the listing, then no auction's
// state older than one shown before, in the listing or in a message, and
// no auto-bid report older than one an autoBidState or the listing showed. It
// counts the changes a socket skipped (gaps in an auction's seqs), which
// only coalescing may explain.
type orderWatch struct {
	mu   sync.Mutex
	last map[string]seen
	// reports is, per auction, the last auto-bid report an autoBidState
	// or a listing showed. An autoBidState is checked against these
	// alone: it is not coalesced in the queue, and a newer auctionState
	// may take an older one's place before it (the extension reads the
	// auction's autoBid in auctionState).
	reports  map[string]int
	listed   bool // the first listing arrived
	answered bool // the first authenticated arrived
	faults   []string
	skipped  int
}

func (w *orderWatch) fault(format string, args ...any) {
	if len(w.faults) < 5 {
		w.faults = append(w.faults, fmt.Sprintf(format, args...))
	}
}

// show checks one auction's state against what the socket showed before.
func (w *orderWatch) show(where string, a listedAuction) {
	s, prev := a.seen(), w.last[a.ID]
	if s.seq < prev.seq || s.report < prev.report {
		w.fault("%s: auction %s went back from %+v to %+v", where, a.ID, prev, s)
	}
	if where == "auctionState" && prev.seq > 0 && s.seq > prev.seq+1 {
		w.skipped += s.seq - prev.seq - 1
	}
	w.last[a.ID] = s
	if where != "auctionState" {
		w.reports[a.ID] = s.report
	}
}

func (w *orderWatch) message(data []byte) {
	var m struct {
		Type     string          `json:"type"`
		Success  bool            `json:"success"`
		Auction  listedAuction   `json:"auction"`
		Auctions []listedAuction `json:"auctions"`
		Data     struct {
			Auctions []listedAuction `json:"auctions"`
		} `json:"data"`
		AuctionID string `json:"auctionId"`
		State     struct {
			Message string `json:"message"`
		} `json:"state"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		w.fault("undecodable %s", data)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if m.Type == "heartbeat" || m.Type == "pong" {
		return
	}
	switch {
	case !w.answered:
		if m.Type != "authenticated" || !m.Success {
			w.fault("first message after authenticate: %s", data)
		}
		w.answered = true
		return
	case !w.listed:
		if m.Type != "monitoredAuctions" {
			w.fault("second message after authenticate: %.120s", data)
		}
		w.listed = true
	}
	switch m.Type {
	case "monitoredAuctions":
		for _, a := range m.Auctions {
			w.show("listing", a)
		}
	case "response":
		for _, a := range m.Data.Auctions {
			w.show("getMonitoredAuctions", a)
		}
	case "auctionState":
		w.show("auctionState", m.Auction)
	case "autoBidState":
		n, _ := strconv.Atoi(m.State.Message)
		if prev := w.reports[m.AuctionID]; n < prev {
			w.fault("autoBidState of %s went back from report %d to %d", m.AuctionID, prev, n)
		}
		w.reports[m.AuctionID] = n
	}
}

// reached reports whether the socket shows want for every auction.
func (w *orderWatch) reached(want map[string]seen) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, s := range want {
		if w.last[id] != s {
			return false
		}
	}
	return true
}

// TestSignInsWhileChangesFlowKeepEveryAuctionInOrder signs sockets of one
// user in, a few at a time, while every auction's feed publishes as fast
// as the fan-out takes changes and the engine reports auto-bid states
// (pushes); some signed-in sockets sign in again or ask for the listing
// meanwhile. On every socket: authenticated first, the listing next, no
// auction's state ever older than one shown before (seq and auto-bid
// report alike), every change skipped explained by a coalescing, and at
// the end the last change and report of every auction.
func TestSignInsWhileChangesFlowKeepEveryAuctionInOrder(t *testing.T) {
	const (
		auctions  = 24
		signers   = 4
		perSigner = 20
	)
	cfg := sharedTokenConfig(signers*perSigner + 1)
	// The readers share the machine with the server: a socket closed for
	// falling a queue behind is not what this tests.
	cfg.QueueSize = 1 << 14
	var coalesced, dropped atomic.Int64
	f := newFixture(t, cfg, Options{Hooks: Hooks{
		Coalesced: func() { coalesced.Add(1) },
		Dropped:   func(string) { dropped.Add(1) },
	}})
	owner := f.login(tokenAlice)
	ids := make([]string, auctions)
	for i := range ids {
		ids[i] = strconv.Itoa(100 + i)
		startMonitoring(owner, ids[i], 50)
	}
	owner.ws.Close()

	var seqs [auctions]int // per auction, the feed's last seq; the publisher's alone
	var reports atomic.Int64
	report := func(i int) {
		n := reports.Add(1)
		f.relay.ReportAutoBid(users.AutoBidState{User: "alice", AuctionID: ids[i], ProductID: int64(100 + i),
			Status: "watching", Message: strconv.FormatInt(n, 10)})
	}
	publish := func(i int) {
		seqs[i]++
		f.feeds.publish(newChange(t, product(int64(100+i), float64(seqs[i])), "e", uint64(seqs[i])))
	}
	// One goroutine makes the changes and the reports, a report for every
	// third change, yielding after each so that on one core the sign-ins
	// and the readers keep their turn.
	stop := make(chan struct{})
	var flow sync.WaitGroup
	flow.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			publish(n % auctions)
			if n%3 == 0 {
				report(n * 7 % auctions)
			}
			runtime.Gosched()
		}
	})

	type socket struct {
		ws    *websocket.Conn
		watch *orderWatch
	}
	var (
		mu      sync.Mutex
		sockets []socket
		readers sync.WaitGroup
		signins sync.WaitGroup
		failed  atomic.Pointer[error]
	)
	fail := func(err error) { failed.CompareAndSwap(nil, &err) }
	t.Cleanup(func() { // after a failure too: no reader outlives the test
		mu.Lock()
		for _, s := range sockets {
			s.ws.Close()
		}
		mu.Unlock()
		readers.Wait()
	})
	// signIn opens a socket, reads the two greetings and signs in; a
	// reader goroutine checks everything after.
	signIn := func(k int) {
		ws, _, err := websocket.DefaultDialer.Dial(f.wsURL(), nil)
		if err != nil {
			fail(err)
			return
		}
		for range 2 { // connected, monitoredAuctions (empty): before signing in
			_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, _, err := ws.ReadMessage(); err != nil {
				fail(err)
				ws.Close()
				return
			}
		}
		_ = ws.SetReadDeadline(time.Time{})
		w := &orderWatch{last: make(map[string]seen), reports: make(map[string]int)}
		mu.Lock()
		sockets = append(sockets, socket{ws, w})
		mu.Unlock()
		readers.Go(func() {
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				w.message(data)
			}
		})
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"authenticate","token":"`+tokenAlice+`","requestId":"a"}`)); err != nil {
			fail(err)
		}
		switch k % 4 {
		case 1:
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"getMonitoredAuctions","requestId":"l"}`))
		case 2:
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"authenticate","token":"`+tokenAlice+`","requestId":"again"}`))
		}
	}
	for s := range signers {
		signins.Go(func() {
			for k := range perSigner {
				signIn(s*perSigner + k)
			}
		})
	}
	signins.Wait()
	close(stop)
	flow.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}

	// The last change and report of every auction, which every socket
	// must come to show.
	want := make(map[string]seen, auctions)
	for i := range auctions {
		publish(i)
	}
	for i := range auctions {
		report(i)
	}
	for i := range auctions {
		want[ids[i]] = seen{seq: seqs[i], report: int(reports.Load()) - auctions + 1 + i}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range sockets {
		for !s.watch.reached(want) {
			if time.Now().After(deadline) {
				s.watch.mu.Lock()
				last, faults := fmt.Sprint(s.watch.last), s.watch.faults
				s.watch.mu.Unlock()
				t.Fatalf("a socket shows %s, want %v (faults %v)", last, want, faults)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, s := range sockets {
		s.ws.Close()
	}
	readers.Wait()
	skipped := 0
	for i, s := range sockets {
		if len(s.watch.faults) > 0 {
			t.Errorf("socket %d: %v", i, s.watch.faults)
		}
		skipped += s.watch.skipped
	}
	total := 0
	for _, n := range seqs {
		total += n
	}
	t.Logf("%d sockets, %d changes, %d reports, %d coalesced, %d skipped", len(sockets), total, reports.Load(), coalesced.Load(), skipped)
	if n := int64(skipped); n > coalesced.Load() {
		t.Errorf("sockets skipped %d changes, but only %d were coalesced: changes were lost", n, coalesced.Load())
	}
	if n := dropped.Load(); n > 0 {
		t.Errorf("%d messages dropped", n)
	}
}
