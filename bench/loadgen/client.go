package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// setupTimeout bounds one client's connect, authenticate and monitoring.
const setupTimeout = 15 * time.Second

// client is one extension: a socket and what its reader measured. The
// reader goroutine owns every field below conn until done is closed.
type client struct {
	// conn and url are the socket and the endpoint it dialled; the
	// reader swaps them on a reconnect, under connMu, which stop holds
	// to close the current one.
	conn     *websocket.Conn
	url      string
	connMu   sync.Mutex
	done     chan struct{}
	products []int64 // what it monitors

	// What a reconnect needs (Plan.Reconnect): the client's number, its
	// token, every endpoint, the dialer; reqs numbers its requests.
	n      int
	token  string
	urls   string
	dialer *websocket.Dialer
	reqs   int

	// Measurements, written by the reader only.
	lat        []time.Duration
	lastSeen   map[int64]seen // the newest change of each product
	delivered  int64
	duplicates int64
	restates   int64
	sources    map[string]int64
	// afterMark holds, per product, the delay from the mark to the first
	// change scheduled at or after it; afterPoll the same for the first
	// such change that came from a poll.
	afterMark map[int64]time.Duration
	afterPoll map[int64]time.Duration
	// firstState holds, per monitored product, when its first
	// auctionState arrived (setup, then the reader).
	firstState map[int64]time.Time
	closeErr   error // why the socket ended before it was stopped
	// With Plan.Reconnect: how many times the socket ended and the
	// client dialled again, whether it finally found no endpoint, the
	// resume in flight, the recovered products' last replayed changes
	// and the resumes' tally.
	reconnects      int
	reconnectFailed bool
	res             *resuming
	tails           map[int64]tail
	resume          resumeTally
	regressions     int64
	// With Plan.Closes or Plan.Remote: each product's changes in the
	// window before its close, and the changes in their lot's last
	// Plan.LastWindow.
	tallies map[int64]*tally
	closing tally
	bySSE   tally // every change in the window that came by SSE
	// sightings holds, with Plan.Closes, each price of a product received
	// for an event due from MeasureFrom on (drain included), in order: a
	// later price covers every change before it (coverage).
	sightings map[int64][]sighting
}

// sighting is a price received: the event k it was due at, and when.
type sighting struct {
	k  int64
	at time.Time
}

// dial connects one client, authenticates it and, when products are given,
// monitors each, waiting for every reply, as the extension does.
func dial(ctx context.Context, d *websocket.Dialer, url, token string, products []int64) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	conn, resp, err := d.DialContext(ctx, url, http.Header{})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", url, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	c := &client{
		conn:       conn,
		url:        url,
		done:       make(chan struct{}),
		lastSeen:   make(map[int64]seen, len(products)),
		sources:    make(map[string]int64, 4),
		afterMark:  make(map[int64]time.Duration, len(products)),
		afterPoll:  make(map[int64]time.Duration, len(products)),
		firstState: make(map[int64]time.Time, len(products)),
		products:   products,
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	_ = conn.SetWriteDeadline(deadline)
	if err := c.request(fmt.Sprintf(`{"type":"authenticate","token":%q,"requestId":"req_0"}`, token), "req_0"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	for i, id := range products {
		reqID := "req_" + strconv.Itoa(i+1)
		msg := fmt.Sprintf(`{"type":"startMonitoring","auctionId":"%d","config":{"maxBid":999999,"strategy":"auto","incrementAmount":1,"autoBid":false},`+
			`"metadata":{"source":"loadgen","title":"bench %d","url":"https://www.nellisauction.com/p/bench/%d"},"requestId":%q}`, id, id, id, reqID)
		if err := c.request(msg, reqID); err != nil {
			conn.Close()
			return nil, fmt.Errorf("startMonitoring %d: %w", id, err)
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Time{})
	return c, nil
}

// request sends msg and reads until the reply carrying reqID, which must
// report success. An auctionState read on the way is noted (noteState).
func (c *client) request(msg, reqID string) error {
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return err
	}
	want := []byte(`"requestId":"` + reqID + `"`)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return err
		}
		c.noteState(data, time.Now())
		if !bytes.Contains(data, want) {
			continue
		}
		if !bytes.Contains(data, []byte(`"success":true`)) {
			return fmt.Errorf("refused: %.200s", data)
		}
		return nil
	}
}

// read records every change until the socket ends; stopped tells an
// expected end (the run is over) from a failure.
func (c *client) read(plan *atomic.Pointer[runPlan], stopped *atomic.Bool) {
	defer close(c.done)
	// One buffer per client, reused: ReadMessage allocates every message,
	// and at 100,000 a second the garbage would cost the shared cores.
	buf := make([]byte, 0, 4096)
	for {
		data, err := readInto(c.conn, buf[:0])
		buf = data[:0]
		now := time.Now()
		if err != nil {
			if stopped.Load() {
				return
			}
			if p := plan.Load(); p != nil && p.Reconnect && c.reconnect(p, stopped) {
				continue
			}
			c.closeErr = err
			return
		}
		c.noteState(data, now)
		p := plan.Load()
		if p == nil {
			continue // before the schedule: the lots' old prices
		}
		if c.finishResume(p, data, now) {
			continue
		}
		ch, ok := parseState(data)
		if !ok {
			if c.res != nil {
				c.res.runID = 0 // a replay's run has nothing between its changes
			}
			continue
		}
		if (c.res != nil || c.tails != nil) && c.raced(ch) {
			continue
		}
		c.record(p, ch, now)
	}
}

// noteState records when the first auctionState of each product arrived;
// once every product has had one it costs a length comparison.
func (c *client) noteState(msg []byte, now time.Time) {
	if len(c.firstState) >= len(c.products) {
		return
	}
	if id, ok := stateAuctionID(msg); ok {
		if _, seen := c.firstState[id]; !seen {
			c.firstState[id] = now
		}
	}
}

// readInto reads the next message into buf, growing it as needed.
func readInto(conn *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := conn.NextReader()
	if err != nil {
		return buf, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// runPlan is a Plan with the schedule's index built once.
type runPlan struct {
	Plan
	index map[int64]int
}

func (c *client) record(p *runPlan, ch change, now time.Time) {
	k, ok := p.Schedule.Lookup(p.index, ch.productID, ch.price)
	if !ok {
		return
	}
	due := p.Schedule.At(k)
	inWindow := !due.Before(p.MeasureFrom) && due.Before(p.MeasureUntil)
	switch c.order(ch) {
	case repeated:
		if inWindow {
			c.duplicates++
		}
		return
	case regression:
		if inWindow {
			c.duplicates++
			c.regressions++
		}
		return
	case restated:
		if inWindow {
			c.restates++
		}
		return
	}
	if p.Closes != nil && !due.Before(p.MeasureFrom) {
		if c.sightings == nil {
			c.sightings = make(map[int64][]sighting, len(c.products))
		}
		c.sightings[ch.productID] = append(c.sightings[ch.productID], sighting{k, now})
	}
	if !p.Mark.IsZero() && !due.Before(p.Mark) {
		if _, seen := c.afterMark[ch.productID]; !seen {
			c.afterMark[ch.productID] = now.Sub(p.Mark)
		}
		if _, seen := c.afterPoll[ch.productID]; !seen && ch.source == "poll" {
			c.afterPoll[ch.productID] = now.Sub(p.Mark)
		}
	}
	if !inWindow {
		return
	}
	c.delivered++
	c.sources[ch.source]++
	c.lat = append(c.lat, now.Sub(due))
	if p.Closes != nil || p.Remote != nil {
		c.tallyGroups(p, ch, due, now.Sub(due))
	}
}

// seen is the newest change a client has of a product.
type seen struct {
	price float64
	seq   uint64
	epoch string
}

// ordering is how a received change stands against the newest one seen.
type ordering int

const (
	newer      ordering = iota // a price above every one seen: a delivery
	repeated                   // a change seen already or older: a duplicate
	regression                 // a later change (newer seq, or another feed) at a price below one seen: a duplicate, and the price went back
	restated                   // a newer change at the price seen: another field of the lot moved
)

// order classifies ch and, unless it is a duplicate, remembers it as the
// product's newest. Within one epoch the feed's seq orders changes; a
// message without one (the floor server's) is ordered by price alone.
func (c *client) order(ch change) ordering {
	last, ok := c.lastSeen[ch.productID]
	if !ok {
		c.lastSeen[ch.productID] = seen{ch.price, ch.seq, ch.epoch}
		return newer
	}
	sameFeed := ch.seq != 0 && last.seq != 0 && ch.epoch == last.epoch
	switch {
	case sameFeed && ch.seq <= last.seq:
		return repeated
	case ch.price < last.price && ch.seq == 0:
		return repeated // no seq (the floor server): a lower price is an older change
	case ch.price < last.price:
		return regression
	case ch.price == last.price && !sameFeed:
		return repeated
	}
	c.lastSeen[ch.productID] = seen{ch.price, ch.seq, ch.epoch}
	if ch.price == last.price {
		return restated
	}
	return newer
}

// stop ends the reader and waits for it.
func (c *client) stop() {
	c.connMu.Lock()
	conn := c.conn
	c.connMu.Unlock()
	_ = conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bench over"), time.Now().Add(time.Second))
	_ = conn.Close()
	<-c.done
}

// closeConn closes the current socket, whichever a reconnect left.
func (c *client) closeConn() {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	_ = c.conn.Close()
}

// errStopped marks a run ended by its context.
var errStopped = errors.New("load generator stopped")
