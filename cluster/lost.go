package cluster

import (
	"time"

	"github.com/nats-io/nats.go"
)

// Bus loss. A node cannot hold any lease once it has gone a full lease
// without a successful JetStream write: each lease's validity runs from
// its last successful renewal, sent before that write was answered, so
// its owners stopped acting by then. Nor can it learn who owns what: the
// hub then serves its own clients standalone (Lost).
//
// Two ways lead there. The connection drops (a cut network, NATS down):
// a full lease after the drop. Or the connection stays up but JetStream
// does not answer: the node's server is on the minority side of a NATS
// cluster partition (no meta or stream leader: writes time out, or "no
// responders"), or it runs without JetStream. Only an acknowledged write
// counts as an answer (the presence put every third of a lease, a
// renewal, a claim, an append): a read may be served by a replica that
// lost its quorum. One slow write on a loaded machine does not make a
// node lost: it takes a full lease without a single acknowledged one.
//
// Nor does a stall of the process (a long GC pause, a frozen VM): while no
// goroutine of the node ran it sent no write, so none could be answered,
// and on waking every answer is older than a lease. The presence
// goroutine ticks every third of a lease; a gap of stallTicks periods
// between its ticks means the node did not run. Until it has ticked after
// such a gap Lost says what it said before, and from that tick JetStream
// gets a full lease to answer again. The node's leases ran out all the
// same: their validity is reckoned by the monotonic clock, which a stall
// does not stop (cluster/lease.go).

// stallTicks is the gap, in presence periods, that means the process did
// not run.
const stallTicks = 2

// disconnected records that the connection dropped, once per outage.
func (b *JetStream) disconnected(*nats.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.downSince.IsZero() {
		b.downSince = b.now()
	}
}

// reconnected ends the outage of the connection, and asks for a presence
// put at once: the node is found again as soon as JetStream answers it.
func (b *JetStream) reconnected(*nats.Conn) {
	b.mu.Lock()
	b.downSince = time.Time{}
	b.mu.Unlock()
	select {
	case b.beatNow <- struct{}{}:
	default:
	}
}

// answered records an acknowledged JetStream write.
func (b *JetStream) answered() {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.answeredAt) {
		b.answeredAt = now
	}
}

// beat records a tick of the presence goroutine, and the first after a
// stall.
func (b *JetStream) beat() {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.beatAt.IsZero() && now.Sub(b.beatAt) >= stallTicks*b.cfg.renewEvery() {
		b.resumedAt = now
	}
	b.beatAt = now
}

// Lost reports whether the node has gone a full lease without an
// acknowledged JetStream write (counted from its first presence tick
// after a stall, if later) and, if its connection dropped before that, a
// full lease since the drop. Before Connect and after Close it is false:
// nothing was lost. While the presence goroutine has not ticked since a
// stall it says what it said last.
func (b *JetStream) Lost() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.answeredAt.IsZero() {
		return false
	}
	now := b.now()
	if now.Sub(b.beatAt) >= stallTicks*b.cfg.renewEvery() {
		return b.lostSaid
	}
	lease := time.Duration(b.cfg.Lease)
	at := later(b.answeredAt, b.resumedAt).Add(lease)
	if !b.downSince.IsZero() && b.downSince.Before(at) {
		// Dropped while JetStream still answered: a lease from the drop.
		at = later(at, b.downSince.Add(lease))
	}
	b.lostSaid = !now.Before(at)
	return b.lostSaid
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
