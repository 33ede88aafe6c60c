package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// resuming is a client's resume in flight: sent on a new socket, its reply
// not read yet.
type resuming struct {
	reqID   []byte // `"requestId":"…"` as the reply carries it
	dropped time.Time
	// from is where each product resumes from; got holds, per product,
	// each seq of that epoch received since.
	from map[int64]seen
	got  map[int64]map[uint64]bool
	// A replay is queued whole (docs/protocol.md), so it arrives as one
	// run of consecutive messages from.seq+1, from.seq+2, …: runID and
	// runLen are the run being read, run each product's longest.
	runID  int64
	runLen uint64
	run    map[int64]uint64
}

// tail is a recovered product's last replayed change: the next live one
// must follow it without a hole.
type tail struct {
	epoch string
	seq   uint64
}

// reconnect, for a socket that ended before the run's end, dials the other
// endpoints in turn (the extension retries every 250 ms to 1 s), signs in
// and sends the resume; the reader then reads the replay and the reply on
// the new socket. false: no endpoint took the client back before
// DrainUntil, or the run stopped.
func (c *client) reconnect(p *runPlan, stopped *atomic.Bool) bool {
	dropped := time.Now()
	c.reconnects++
	list := strings.Split(c.urls, ",")
	others := make([]string, 0, len(list))
	for _, u := range list {
		if u != c.url {
			others = append(others, u)
		}
	}
	if len(others) == 0 {
		others = list
	}
	for attempt := 0; time.Now().Before(p.DrainUntil) && !stopped.Load(); attempt++ {
		url := others[(c.n+attempt)%len(others)]
		conn, res, err := c.redial(p, url, dropped)
		if err != nil {
			c.resume.Retries++
			if c.resume.FirstErr == "" {
				c.resume.FirstErr = err.Error()
			}
		}
		if err == nil {
			c.connMu.Lock()
			c.conn, c.url, c.res = conn, url, res
			c.connMu.Unlock()
			if stopped.Load() {
				_ = conn.Close()
				return false
			}
			return true
		}
		time.Sleep(250*time.Millisecond + rand.N(750*time.Millisecond))
	}
	c.reconnectFailed = true
	return false
}

// redial connects to url, signs in and sends the resume of every product
// the client has seen a change of.
func (c *client) redial(p *runPlan, url string, dropped time.Time) (*websocket.Conn, *resuming, error) {
	ctx, cancel := context.WithDeadline(context.Background(), p.DrainUntil)
	defer cancel()
	ctx, cancelSetup := context.WithTimeout(ctx, setupTimeout)
	defer cancelSetup()
	conn, _, err := c.dialer.DialContext(ctx, url, http.Header{})
	if err != nil {
		return nil, nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	_ = conn.SetWriteDeadline(deadline)
	c.reqs++
	authID := "re_" + strconv.Itoa(c.reqs)
	if err := conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"authenticate","token":%q,"requestId":%q}`, c.token, authID)); err != nil {
		conn.Close()
		return nil, nil, err
	}
	want := []byte(`"requestId":"` + authID + `"`)
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			conn.Close()
			return nil, nil, err
		}
		if !bytes.Contains(data, want) {
			continue // monitoredAuctions; no change reaches a socket before it signs in
		}
		if !bytes.Contains(data, []byte(`"success":true`)) {
			conn.Close()
			return nil, nil, fmt.Errorf("authenticate: %.200s", data)
		}
		break
	}
	res := &resuming{dropped: dropped, from: map[int64]seen{}, got: map[int64]map[uint64]bool{}, run: map[int64]uint64{}}
	points := map[string]any{}
	for _, id := range c.products {
		if s, ok := c.lastSeen[id]; ok && s.seq > 0 && s.epoch != "" {
			res.from[id] = s
			points[strconv.FormatInt(id, 10)] = map[string]any{"epoch": s.epoch, "seq": s.seq}
		}
	}
	c.reqs++
	resumeID := "re_" + strconv.Itoa(c.reqs)
	res.reqID = []byte(`"requestId":"` + resumeID + `"`)
	msg, _ := json.Marshal(map[string]any{"type": "resume", "auctions": points, "requestId": resumeID})
	if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
		conn.Close()
		return nil, nil, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, res, nil
}

// raced notes a change received while a resume is in flight, or after
// it until the product's next live change, and reports whether it repeats
// a change the client has (a live push that raced the replay, which the
// protocol allows and the client ignores: neither a delivery nor a
// duplicate).
func (c *client) raced(ch change) bool {
	last, seenBefore := c.lastSeen[ch.productID]
	repeat := seenBefore && ch.epoch == last.epoch && ch.seq != 0 && ch.seq <= last.seq
	if r := c.res; r != nil {
		from, ok := r.from[ch.productID]
		if !ok || ch.epoch != from.epoch {
			r.runID = 0
			return false
		}
		switch {
		case ch.seq == from.seq+1:
			r.runID, r.runLen = ch.productID, 1
		case r.runID == ch.productID && ch.seq == from.seq+r.runLen+1:
			r.runLen++
		default:
			r.runID = 0
		}
		if r.runID != 0 {
			r.run[r.runID] = max(r.run[r.runID], r.runLen)
		}
		if r.got[ch.productID] == nil {
			r.got[ch.productID] = map[uint64]bool{}
		}
		r.got[ch.productID][ch.seq] = true
	} else {
		t, ok := c.tails[ch.productID]
		if !ok || ch.epoch != t.epoch {
			return false
		}
		if ch.seq > t.seq {
			delete(c.tails, ch.productID)
			if ch.seq > t.seq+1 {
				c.resume.Skipped += int64(ch.seq - t.seq - 1)
			}
		}
	}
	if repeat {
		c.resume.Raced++
	}
	return repeat
}

// resumeReply is the resume's response.
type resumeReply struct {
	Data struct {
		Auctions map[string]struct {
			Recovered bool `json:"recovered"`
			Changes   int  `json:"changes"`
			Found     bool `json:"found"`
		} `json:"auctions"`
	} `json:"data"`
}

// finishResume reads the resume's reply: each product's replay against
// what arrived. ok is false when msg is not the reply.
func (c *client) finishResume(p *runPlan, msg []byte, now time.Time) (ok bool) {
	r := c.res
	if r == nil || !bytes.Contains(msg, r.reqID) {
		return false
	}
	c.res = nil
	c.resume.Took = append(c.resume.Took, now.Sub(r.dropped))
	var reply resumeReply
	_ = json.Unmarshal(msg, &reply)
	for id, from := range r.from {
		c.resume.Products++
		got := reply.Data.Auctions[strconv.FormatInt(id, 10)]
		if !got.Recovered {
			last := c.lastSeen[id]
			switch {
			case last.epoch != from.epoch:
				c.resume.NewEpoch++
			case last.seq > from.seq && last.seq-from.seq <= uint64(max(p.History, 0)):
				c.resume.UnrecoveredWithin++
			}
			continue
		}
		c.resume.Recovered++
		n := uint64(max(got.Changes, 0))
		c.resume.Replayed += int64(n)
		for seq := from.seq + 1; seq <= from.seq+n; seq++ {
			if !r.got[id][seq] {
				c.resume.Gaps++
			}
		}
		if r.run[id] < n {
			c.resume.Broken++
		}
		if c.tails == nil {
			c.tails = map[int64]tail{}
		}
		c.tails[id] = tail{from.epoch, from.seq + uint64(got.Changes)}
	}
	return true
}

// resumeTally is one client's share of ResumeStats.
type resumeTally struct {
	Products, Recovered, UnrecoveredWithin, NewEpoch int
	Broken, Retries                                  int
	Replayed, Gaps, Skipped, Raced                   int64
	Took                                             []time.Duration
	FirstErr                                         string
}
