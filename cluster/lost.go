package cluster

import (
	"time"

	"github.com/nats-io/nats.go"
)

// Bus loss. A node that has been without NATS for a full lease cannot
// hold any lease (its owners stopped acting by then) and cannot learn who
// owns what: the hub then serves its own clients standalone (Lost).

// disconnected records that the connection dropped, once per outage.
func (b *JetStream) disconnected(*nats.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.downSince.IsZero() {
		b.downSince = time.Now()
	}
}

// reconnected ends the outage.
func (b *JetStream) reconnected(*nats.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.downSince = time.Time{}
}

// Lost reports whether the node has been without NATS for a full lease.
// Before Connect and after Close it is false: nothing was lost.
func (b *JetStream) Lost() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.closed && !b.downSince.IsZero() && time.Since(b.downSince) >= time.Duration(b.cfg.Lease)
}
