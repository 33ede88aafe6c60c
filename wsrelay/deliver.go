package wsrelay

import (
	"runtime"
	"sync"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/wsconn"
)

// productSubscriber is the relay as the hub sees it.
type productSubscriber struct{ r *Relay }

func (s productSubscriber) Deliver(c *hub.Change) { s.r.deliver(c) }

// deliver fans a change out: encoded once per user monitoring the product
// and shared by that user's sockets, and once for every socket that
// subscribed to it. It runs on the feed's goroutine and sends to the
// sockets itself, never holding r.mu while it does: the targets are
// collected under the read lock, and each user's frame is built and sent
// under its auction's sendMu (deliverTo). Each socket that keeps up gets
// the frame at once: one non-blocking write(2) on plain TCP, one TLS
// record the kernel has room for over TLS (wsconn.Socket.Send); what the
// kernel does not take and what arrives while the socket's writer
// goroutine runs wait in the socket's queue for that goroutine. No write waits for a client, but the feed
// waits for every write: from fanoutMin (32) monitored auctions of the
// product up, the fan-out is split across up to GOMAXPROCS goroutines and
// deliver returns only when every part has written or queued its frames,
// so a socket still gets a product's changes in order.
//
// An auction whose user has no socket here is skipped unless c carries
// that user's own state, which is kept (monitored.observe): it has nobody
// to send to, and a socket signing in later reads the feed's state, which
// holds c already. In a cluster every node monitors every user's auctions
// (the users' records are shared) while each user's sockets are on one
// node, so without the skip each node would visit every user of the
// cluster for every change, not just its own.
func (r *Relay) deliver(c *hub.Change) {
	if c == nil {
		return
	}
	now := r.now()
	t := targetsPool.Get().(*targets)
	defer t.put()
	r.mu.RLock()
	if r.closing {
		r.mu.RUnlock()
		return
	}
	for a := range r.monitors[c.ProductID] {
		if len(a.owner.conns) > 0 || a.keeps(c) {
			t.auctions = append(t.auctions, a)
		}
	}
	for conn := range r.subscribers[c.ProductID] {
		t.conns = append(t.conns, conn)
	}
	var fetchedBy string // whose cookies fetched c's user state, for the peers
	if c.User != nil {
		fetchedBy = r.userStateOwnerLocked(c, t.auctions)
	}
	r.mu.RUnlock()
	r.publishUserState(fetchedBy, c)

	if len(t.auctions) > 0 {
		cf := newChangeFields(c, now)
		if parts := fanoutParts(len(t.auctions)); parts > 1 {
			r.deliverParallel(c, &cf, t.auctions, parts)
		} else {
			for _, a := range t.auctions {
				t.scratch = r.deliverTo(a, c, &cf, t.scratch[:0])
			}
		}
	}
	if len(t.conns) > 0 {
		sendToAll(t.conns, nil, wsconn.Message{Frame: auctionUpdateFrame(c.ProductID, c, now), Kind: "auctionUpdate",
			Key: productKey(c.ProductID), ReceivedAt: c.ReceivedAt})
	}
}

// targets is a fan-out's list of auctions and sockets, reused.
type targets struct {
	auctions []*monitored
	conns    []*conn // subscribe sockets
	scratch  []*conn // one user's sockets (deliverTo)
}

var targetsPool = sync.Pool{New: func() any { return new(targets) }}

func (t *targets) put() {
	clear(t.auctions)
	clear(t.conns)
	clear(t.scratch)
	t.auctions, t.conns, t.scratch = t.auctions[:0], t.conns[:0], t.scratch[:0]
	targetsPool.Put(t)
}

// fanoutMin is the number of users below which splitting a fan-out costs
// more (a goroutine, a copy of the set) than it saves. A delivery to a
// socket that keeps up is a write(2), about 10 µs on loopback here, so
// even a few dozen sockets are worth a second core.
const fanoutMin = 32

func fanoutParts(users int) int {
	if users < fanoutMin {
		return 1
	}
	return min(runtime.GOMAXPROCS(0), users/fanoutMin)
}

// deliverParallel delivers c to the auctions from parts goroutines and
// waits for all of them.
func (r *Relay) deliverParallel(c *hub.Change, cf *changeFields, list []*monitored, parts int) {
	var wg sync.WaitGroup
	size := (len(list) + parts - 1) / parts
	for start := 0; start < len(list); start += size {
		chunk := list[start:min(start+size, len(list))]
		wg.Go(func() {
			var scratch []*conn
			for _, a := range chunk {
				scratch = r.deliverTo(a, c, cf, scratch[:0])
			}
			clear(scratch)
		})
	}
	wg.Wait()
}

// deliverTo sends c's auctionState to one user's sockets, encoded once
// for all of them, with what Nellis said about that user (observe) in
// place of the public values. Under a's sendMu, so that a state pushed
// meanwhile (push.go) is either built before it or after it on every
// socket, it reads the auction and its owner's sockets under r.mu (read)
// into scratch, which it returns for reuse, and sends after releasing
// r.mu. The frame is pooled (wsconn.Frame): sockets that keep up (the
// usual case) are written to at once and release it, and its buffer
// serves the next user once the last socket holding it lets go; a fan-out
// to 10,000 users would otherwise leave 15 MB of garbage per change.
func (r *Relay) deliverTo(a *monitored, c *hub.Change, cf *changeFields, scratch []*conn) []*conn {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	r.mu.RLock()
	if r.closing || a.owner.auctions[a.ID] != a {
		r.mu.RUnlock()
		return scratch
	}
	us := a.observe(c) // kept even for a user without sockets
	if len(a.owner.conns) == 0 {
		r.mu.RUnlock()
		return scratch
	}
	f := wsconn.NewFrame(fannedStateSize(a.head, cf, a.autoBid, us))
	f.SetText(fannedStatePayload(f.Buffer(), a.head, cf, a.autoBid, us))
	for conn := range a.owner.conns {
		scratch = append(scratch, conn)
	}
	r.mu.RUnlock()
	sendToAll(scratch, a, wsconn.Message{Frame: f, Kind: "auctionState", Key: stateKey(a.ID), ReceivedAt: c.ReceivedAt, Epoch: c.Epoch, Seq: c.Seq})
	return scratch
}
