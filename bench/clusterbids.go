package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/bench/loadgen"
)

// cluster-failover's bids: a few users snipe on lots of their own (not the
// schedule's, whose prices the clients check against it), each lot's
// window opening in the second and a half before the kill, while the
// simulator holds every bid bidDelay before placing it. So the killed
// owner dies with bids in flight, placed only after the lots' new owners
// took over (about a lease after the kill): a new owner then sees the lot
// in its window at the old price, and must not send the dead owner's bid
// again ("every auto-bid sent once"). bidDelay stays under the engine's
// bid_timeout (10 s), so the surviving owners' bids are answered.
const (
	bidLotCount  = 9 // spread over the nodes: the killed one owns none 1 run in 40
	bidderCount  = 3 // one on each node; each snipes on every bid lot
	bidDelay     = 5 * time.Second
	snipeSeconds = 6
	// The first lot's window opens firstOpen before the mark, each next
	// one openEvery later.
	firstOpen = 1400 * time.Millisecond
	openEvery = 150 * time.Millisecond
	// bidHeadroom is each bidder's maximum above the lot's price.
	bidHeadroom = 50
)

// bidders are the sockets of the sniping users, held until the run ends
// (the extension keeps its socket open); their readers discard what the
// gateway pushes.
type bidders struct {
	conns []*websocket.Conn
	wg    sync.WaitGroup
}

// bidderName is bidder b's name at the simulator (its cookie).
func bidderName(b int) string { return "bidder" + strconv.Itoa(b) }

// startBidders sets the bid lots' closes around mark, slows the
// simulator's bids, and signs the bidders in, bidder b on node b mod n:
// each syncs its cookie (POST /api/auth) and monitors every bid lot with
// a sniping auto-bid, as the extension does.
func (c *clusterServer) startBidders(mark time.Time) error {
	c.sim.SetBidDelay(bidDelay)
	price := map[int64]int{}
	for _, a := range c.sim.Auctions() {
		price[a.ID] = a.CurrentBid
	}
	for j, id := range c.bidLots {
		opens := mark.Add(-firstOpen + time.Duration(j)*openEvery)
		if err := c.sim.SetCloseTime(id, opens.Add(snipeSeconds*time.Second)); err != nil {
			return err
		}
	}
	c.bidders = &bidders{}
	for b := range bidderCount {
		n := c.nodes[b%len(c.nodes)]
		token := loadgen.Token(c.secret, c.clients+b)
		if err := syncCookies(n, token, "sim_user="+bidderName(b)); err != nil {
			return fmt.Errorf("bidder %d: %w", b, err)
		}
		conn, err := snipe(n.wsURL(), token, c.bidLots, price)
		if err != nil {
			return fmt.Errorf("bidder %d: %w", b, err)
		}
		c.bidders.conns = append(c.bidders.conns, conn)
		c.bidders.wg.Add(1)
		go func() {
			defer c.bidders.wg.Done()
			for {
				if _, _, err := conn.NextReader(); err != nil {
					return
				}
			}
		}()
	}
	return nil
}

// stop closes the bidders' sockets and waits for their readers.
func (b *bidders) stop() {
	if b == nil {
		return
	}
	for _, conn := range b.conns {
		_ = conn.Close()
	}
	b.wg.Wait()
}

// syncCookies posts the user's Nellis cookies to node n's REST API.
func syncCookies(n *gateway, token, cookies string) error {
	body := fmt.Sprintf(`{"cookies":%q}`, cookies)
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/api/auth", n.port), strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("POST /api/auth: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /api/auth: %s", resp.Status)
	}
	return nil
}

// snipe signs in at url and monitors each lot with a sniping auto-bid up
// to its price plus bidHeadroom, waiting for each reply.
func snipe(url, token string, lots []int64, price map[int64]int) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	request := func(msg, reqID string) error {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			return err
		}
		want := []byte(`"requestId":"` + reqID + `"`)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return err
			}
			if !bytes.Contains(data, want) {
				continue
			}
			if !bytes.Contains(data, []byte(`"success":true`)) {
				return fmt.Errorf("refused: %.200s", data)
			}
			return nil
		}
	}
	if err := request(fmt.Sprintf(`{"type":"authenticate","token":%q,"requestId":"a"}`, token), "a"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	for i, id := range lots {
		reqID := "s" + strconv.Itoa(i)
		msg := fmt.Sprintf(`{"type":"startMonitoring","auctionId":"%d","config":{"maxBid":%d,"strategy":"sniping","incrementAmount":1,"autoBid":true,"snipeSeconds":%d},`+
			`"metadata":{"source":"bench","title":"snipe %d","url":"https://www.nellisauction.com/p/bench/%d"},"requestId":%q}`,
			id, price[id]+bidHeadroom, snipeSeconds, id, id, reqID)
		if err := request(msg, reqID); err != nil {
			conn.Close()
			return nil, fmt.Errorf("startMonitoring %d: %w", id, err)
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, nil
}

// bidOutcome is what the simulator received of the bidders' bids.
type bidOutcome struct {
	lots, bidders int
	// requests reached the simulator, accepted of them placed;
	// inFlight had arrived before the kill and were placed after it.
	requests, accepted, inFlight int
	// killedLots are the bid lots the killed node owned at the kill,
	// onKilled the requests on them, inFlightKilled those in flight.
	killedLots, onKilled, inFlightKilled int
	// repeated counts requests of a (user, lot, amount) already sent.
	repeated int
}

// bidsOutcome reads the simulator's log of the bid lots' requests.
func (c *clusterServer) bidsOutcome() *bidOutcome {
	o := &bidOutcome{lots: len(c.bidLots), bidders: bidderCount}
	killed := map[int64]bool{}
	for _, id := range c.killedProducts {
		if slices.Contains(c.bidLots, id) {
			killed[id] = true
		}
	}
	o.killedLots = len(killed)
	type pair struct {
		user   string
		lot    int64
		amount int
	}
	seen := map[pair]bool{}
	for _, r := range c.sim.BidRequests(0) {
		if !slices.Contains(c.bidLots, r.ProductID) {
			continue
		}
		o.requests++
		if r.Accepted {
			o.accepted++
		}
		inFlight := !c.killedAt.IsZero() && r.Received.Before(c.killedAt) && !r.At.Before(c.killedAt)
		if inFlight {
			o.inFlight++
		}
		if killed[r.ProductID] {
			o.onKilled++
			if inFlight {
				o.inFlightKilled++
			}
		}
		p := pair{r.User, r.ProductID, r.Amount}
		if seen[p] {
			o.repeated++
		}
		seen[p] = true
	}
	return o
}

// bidLotsFrom picks n lots of the simulator's that are not in taken,
// those closing last (none closes during a run unless a scenario moves
// it).
func bidLotsFrom(sim *simulator, taken []int64, n int) ([]int64, error) {
	ids, err := sim.products(len(taken) + n)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, id := range ids {
		if !slices.Contains(taken, id) {
			out = append(out, id)
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("found %d lots to bid on, want %d", len(out), n)
	}
	return out, nil
}
