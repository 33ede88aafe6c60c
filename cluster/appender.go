package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrLapsed means the lease is no longer valid by this node's clock (its
// renewals failed, say NATS is away): the holder must stop acting until a
// renewal succeeds. Unlike ErrDeposed, no other node is known to own the
// product.
var ErrLapsed = errors.New("cluster: the lease lapsed")

// Appender is an owner's writer of one product's log: it continues the
// log's epoch and seq and carries the fencing cursor from one append to
// the next.
type Appender struct {
	bus   Bus
	lease *Lease

	mu     sync.Mutex
	epoch  string
	seq    uint64 // of the last stored change
	cursor uint64 // its StreamSeq, 0 for an empty log
}

// TakeOver starts appending for the holder of lease: it continues the
// newest stored change's epoch at its seq+1, and starts newEpoch() at 1
// only when the log is empty, so a client resuming on any node keeps its
// place.
func TakeOver(ctx context.Context, bus Bus, lease *Lease, newEpoch func() string) (*Appender, error) {
	a := &Appender{bus: bus, lease: lease}
	last, err := bus.Last(ctx, lease.ProductID)
	switch {
	case errors.Is(err, ErrEmpty):
		a.epoch = newEpoch()
	case err != nil:
		return nil, err
	default:
		a.epoch, a.seq, a.cursor = last.Epoch, last.Seq, last.StreamSeq
	}
	return a, nil
}

// Epoch is the epoch this owner continues.
func (a *Appender) Epoch() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.epoch
}

// Seq is the seq of the last stored change; the next is Seq()+1.
func (a *Appender) Seq() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seq
}

// Append stores the next change (seq Seq()+1 of Epoch()) while the lease
// is valid: ErrLapsed when it no longer is, ErrDeposed when another node
// appended since. Appends of one product must not overlap.
func (a *Appender) Append(ctx context.Context, source string, receivedAt time.Time, payload []byte) (Entry, error) {
	if !a.lease.Valid() {
		if a.lease.ValidUntil().IsZero() {
			return Entry{}, fmt.Errorf("%w (product %d)", ErrDeposed, a.lease.ProductID)
		}
		return Entry{}, fmt.Errorf("%w (product %d)", ErrLapsed, a.lease.ProductID)
	}
	a.mu.Lock()
	rec := Record{ProductID: a.lease.ProductID, Epoch: a.epoch, Seq: a.seq + 1, Source: source, ReceivedAt: receivedAt, Payload: payload}
	cursor := a.cursor
	a.mu.Unlock()
	at, err := a.bus.Append(ctx, rec, cursor)
	if err != nil {
		return Entry{}, err
	}
	a.mu.Lock()
	a.seq, a.cursor = rec.Seq, at
	a.mu.Unlock()
	return Entry{Record: rec, StreamSeq: at}, nil
}
