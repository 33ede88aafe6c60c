package module

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/nellissim"
)

// The fault suite's watching client: an extension monitoring one lot,
// whose every auctionState is kept and checked (faultrig_test.go).

// stateMsg is one auctionState the watching client received for its lot.
type stateMsg struct {
	at       time.Time
	seq      uint64
	epoch    string
	source   string
	price    float64 // data.currentBid
	panel    float64 // the top-level copy the extension's panel reads
	bidCount int
	nextBid  float64 // data.nextBid
	panelBid float64 // the top-level nextBid
	blank    bool    // no change yet: "data":null, no seq
}

func (s stateMsg) String() string {
	if s.blank {
		return "no data"
	}
	return fmt.Sprintf("seq %d price %v source %s", s.seq, s.price, s.source)
}

// watcher is an extension monitoring one lot. A goroutine reads its socket
// until it closes, recording every auctionState that carries a change.
type watcher struct {
	conn    *websocket.Conn
	id      string
	changed chan struct{} // signalled after each recorded message or the end
	done    chan struct{} // closed when the reader has returned

	mu       sync.Mutex
	states   []stateMsg
	replies  map[string]map[string]any // by requestId
	problems []string                  // messages that broke the protocol
	err      error                     // what ended the reader
}

// watch connects a client and starts monitoring productID. It reads from
// the start: a change may be broadcast before the reply to startMonitoring,
// and it must not be missed.
func watch(t *testing.T, productID int64) *watcher {
	t.Helper()
	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatalf("dial the gateway: %v", err)
	}
	w := &watcher{
		conn: ext.conn, id: fmt.Sprint(productID),
		replies: map[string]map[string]any{},
		changed: make(chan struct{}, 1), done: make(chan struct{}),
	}
	go w.read()
	t.Cleanup(func() {
		w.conn.Close()
		<-w.done
	})
	w.request(t, map[string]any{"type": "authenticate", "token": testToken, "requestId": "req_1"})
	w.request(t, map[string]any{
		"type": "startMonitoring", "auctionId": w.id, "requestId": "req_2",
		"config":   map[string]any{"maxBid": 5, "strategy": "sniping", "incrementAmount": 1, "autoBid": false},
		"metadata": map[string]any{"source": "test", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", productID)},
	})
	return w
}

// request sends a request and waits for its successful reply.
func (w *watcher) request(t *testing.T, req map[string]any) {
	t.Helper()
	id := req["requestId"].(string)
	if err := w.conn.WriteJSON(req); err != nil {
		t.Fatalf("%s: %v", req["type"], err)
	}
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		w.mu.Lock()
		reply, ok := w.replies[id]
		err := w.err
		w.mu.Unlock()
		switch {
		case ok && reply["success"] == true:
			return
		case ok:
			t.Fatalf("%s: %v", req["type"], reply)
		case err != nil:
			t.Fatalf("%s: the socket ended: %v", req["type"], err)
		}
		select {
		case <-w.changed:
		case <-timer.C:
			t.Fatalf("%s: no reply in 5s", req["type"])
		}
	}
}

func (w *watcher) read() {
	defer close(w.done)
	for {
		_, data, err := w.conn.ReadMessage()
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			w.notify()
			return
		}
		var m struct {
			Type      string `json:"type"`
			RequestID string `json:"requestId"`
			Auction   *struct {
				ID         string   `json:"id"`
				Seq        *uint64  `json:"seq"`
				Epoch      string   `json:"epoch"`
				Source     string   `json:"source"`
				CurrentBid *float64 `json:"currentBid"`
				NextBid    float64  `json:"nextBid"`
				Data       *struct {
					CurrentBid *float64 `json:"currentBid"`
					NextBid    float64  `json:"nextBid"`
					BidCount   int      `json:"bidCount"`
				} `json:"data"`
			} `json:"auction"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			w.problem(fmt.Sprintf("a message that is not JSON: %v: %.200s", err, data))
			continue
		}
		if m.RequestID != "" {
			var reply map[string]any
			_ = json.Unmarshal(data, &reply) // it decoded once already
			w.mu.Lock()
			w.replies[m.RequestID] = reply
			w.mu.Unlock()
			w.notify()
			continue
		}
		a := m.Auction
		if m.Type != "auctionState" || a == nil || a.ID != w.id {
			continue
		}
		if a.Seq == nil {
			// The state before the feed's first change: no data yet.
			w.mu.Lock()
			w.states = append(w.states, stateMsg{at: time.Now(), blank: true})
			w.mu.Unlock()
			continue
		}
		if a.Data == nil || a.Data.CurrentBid == nil || a.CurrentBid == nil {
			w.problem(fmt.Sprintf("auctionState seq %d without a price: %.300s", *a.Seq, data))
			continue
		}
		w.mu.Lock()
		w.states = append(w.states, stateMsg{
			at: time.Now(), seq: *a.Seq, epoch: a.Epoch, source: a.Source,
			price: *a.Data.CurrentBid, panel: *a.CurrentBid, bidCount: a.Data.BidCount,
			nextBid: a.Data.NextBid, panelBid: a.NextBid,
		})
		w.mu.Unlock()
		w.notify()
	}
}

func (w *watcher) problem(p string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.problems = append(w.problems, p)
}

func (w *watcher) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watcher) history() []stateMsg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]stateMsg(nil), w.states...)
}

// await waits until the client has received a state showing price, and
// returns the first such state.
func (w *watcher) await(t *testing.T, price float64, deadline time.Time) stateMsg {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		w.mu.Lock()
		for _, s := range w.states {
			if !s.blank && s.price == price {
				w.mu.Unlock()
				return s
			}
		}
		err := w.err
		w.mu.Unlock()
		if err != nil {
			t.Fatalf("waiting for price %v: the socket ended: %v (received %v)", price, err, w.history())
		}
		select {
		case <-w.changed:
		case <-timer.C:
			h := w.history()
			note := ""
			if len(h) > 0 && h[len(h)-1].blank {
				note = "; the client's lot shows no data: a change was lost"
			}
			t.Fatalf("price %v did not reach the client in time (received %v%s)", price, h, note)
		}
	}
}

// awaitBid waits for a bid's price, checks that the state carries the
// simulator's price, next bid and bid count, in both places the extension
// reads, and that it came from an allowed source.
func (w *watcher) awaitBid(t *testing.T, lot nellissim.Auction, deadline time.Time, sources ...string) stateMsg {
	t.Helper()
	s := w.await(t, float64(lot.CurrentBid), deadline)
	if s.panel != s.price {
		t.Errorf("price %v in data but %v at the auction's top level", s.price, s.panel)
	}
	if s.bidCount != lot.BidCount {
		t.Errorf("price %v arrived with bid count %d, want %d", s.price, s.bidCount, lot.BidCount)
	}
	// The next bid is what the extension offers: one at or below the price
	// is refused by Nellis as too low.
	if want := float64(lot.NextBid); s.nextBid != want || s.panelBid != want {
		t.Errorf("price %v arrived with next bid %v (panel %v), want %v", s.price, s.nextBid, s.panelBid, want)
	}
	if len(sources) > 0 && !slices.Contains(sources, s.source) {
		t.Errorf("price %v arrived with source %q, want one of %q", s.price, s.source, sources)
	}
	return s
}

// count is how many states the client received showing price.
func (w *watcher) count(price float64) int {
	n := 0
	for _, s := range w.history() {
		if !s.blank && s.price == price {
			n++
		}
	}
	return n
}

// awaitEnd waits for the socket to end and returns why.
func (w *watcher) awaitEnd(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(within):
		t.Fatalf("the socket was still open %v later", within)
	}
	return w.ended()
}

// ended is what ended the socket, nil while it is open.
func (w *watcher) ended() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// checkHistory asserts what the gateway guarantees a client that keeps
// reading: once it has a state it never shows "no data" again; one epoch
// (the feed lives as long as the lot is watched); seq
// never goes backwards, and a repeated seq is the same state sent again
// (the reply to startMonitoring may repeat the change being delivered);
// the price never goes backwards; and seq skips a change only when the
// client's queue coalesced it into a newer one (full states, latest wins:
// that is the relay's contract), which coalescedFrames counts. Seq gaps
// without coalescing would mean a lost change.
func (w *watcher) checkHistory(t *testing.T, before promSample) {
	t.Helper()
	w.mu.Lock()
	for _, p := range w.problems {
		t.Errorf("the gateway sent %s", p)
	}
	w.mu.Unlock()
	var h []stateMsg
	for i, s := range w.history() {
		if !s.blank {
			h = append(h, s)
		} else if len(h) > 0 {
			t.Errorf("state %d: the client's lot went back to no data after %v", i, h[len(h)-1])
		}
	}
	if len(h) == 0 {
		t.Error("the client received no state at all")
		return
	}
	gaps := 0
	for i := 1; i < len(h); i++ {
		prev, cur := h[i-1], h[i]
		switch {
		case cur.epoch != prev.epoch:
			t.Errorf("epoch changed from %s to %s at %v: the feed was recreated while watched", prev.epoch, cur.epoch, cur)
		case cur.seq < prev.seq:
			t.Errorf("seq went backwards: %v after %v", cur, prev)
		case cur.seq == prev.seq && cur.price != prev.price:
			t.Errorf("seq %d sent twice with different prices: %v and %v", cur.seq, prev, cur)
		case cur.seq > prev.seq+1:
			gaps++
		}
		if cur.price < prev.price {
			t.Errorf("price went backwards: %v after %v", cur, prev)
		}
	}
	if gaps > 0 {
		if c := grew(t, before, coalescedFrames); c < float64(gaps) {
			t.Errorf("%d seq gaps but only %v coalesced frames: changes were lost (received %v)", gaps, c, h)
		}
	}
}
