// Package cluster lets several gateways share their products: one node
// owns each product's upstream and appends its changes to a log every node
// reads, so a client may resume on any node and a product outlives the
// node that owned it. The Bus interface is what the gateway needs from
// the broker; JetStream implements it over NATS JetStream, whose
// compare-and-set on stream and key sequences is decided by the stream
// leader and replicated before it is acknowledged.
//
// The package knows no Caddy, hub or relay: a change is a Record with its
// payload as opaque bytes.
package cluster

import (
	"context"
	"errors"
	"time"
)

// ErrDeposed means another node holds the product now: the append or the
// renewal was refused because the log or the lease moved on since this
// node last saw it. Its holder must stop acting on the product (close its
// upstream, bid no more) and become a reader.
var ErrDeposed = errors.New("cluster: deposed: another node owns the product")

// ErrHeld is Claim's answer while another node's lease may still be valid.
var ErrHeld = errors.New("cluster: the product is owned by another node")

// ErrEmpty is Last's answer for a product whose log holds nothing.
var ErrEmpty = errors.New("cluster: the product's log is empty")

// ErrClosed is the answer of every call after Close.
var ErrClosed = errors.New("cluster: closed")

// Record is one change of a product as its owner appends it.
type Record struct {
	ProductID  int64
	Epoch      string // the feed's epoch, kept across owners
	Seq        uint64 // consecutive per product within an epoch
	Source     string // where the change came from (the hub's Source)
	ReceivedAt time.Time
	Payload    []byte // the change, opaque here
}

// Entry is a stored record with its place in the log.
type Entry struct {
	Record
	// StreamSeq is the record's sequence in the whole log: the fencing
	// cursor the next Append of this product must expect. It is not the
	// feed's Seq, which clients see.
	StreamSeq uint64
}

// Bus is what a gateway node needs from the broker.
type Bus interface {
	// Node is this node's name.
	Node() string

	// Append stores rec if the product's last stored entry is still the
	// one at StreamSeq expect (0: the log is empty) and returns the new
	// entry's StreamSeq. Refused, it returns an error matching ErrDeposed.
	Append(ctx context.Context, rec Record, expect uint64) (uint64, error)
	// Last returns the product's newest stored entry, or ErrEmpty.
	Last(ctx context.Context, productID int64) (Entry, error)
	// Backfill returns the product's stored entries of the newest epoch
	// with a Seq above sinceSeq, oldest first: what a new local feed puts
	// in its history.
	Backfill(ctx context.Context, productID int64, sinceSeq uint64) ([]Entry, error)
	// Subscribe calls handle, on one goroutine, with every product's
	// entries appended from now on, in log order, until the subscription
	// is stopped.
	Subscribe(ctx context.Context, handle func(Entry)) (Subscription, error)

	// Claim takes the product's lease if it is free, or once it has gone
	// a full lease without renewal since this node first saw it; until
	// then it returns ErrHeld. A node claims again what it holds only
	// through Renew.
	Claim(ctx context.Context, productID int64) (*Lease, error)
	// Renew extends a held lease; ErrDeposed means it was lost. It is
	// due every RenewEvery.
	Renew(ctx context.Context, l *Lease) error
	// Release gives the lease up, unless another node took it meanwhile.
	Release(ctx context.Context, l *Lease) error
	// WatchOwners calls handle, on one goroutine, with every write of a
	// lease key (the current ones first) until the subscription is
	// stopped: readers learn of a release, or of a holder gone quiet,
	// without asking. Claim counts a lease from the first sight of a
	// revision, by the watch or by Claim itself.
	WatchOwners(ctx context.Context, handle func(OwnerChange)) (Subscription, error)
	// HandOver gives a held lease to node to, which asked for it; the
	// caller stopped acting on the product first. to claims it at once,
	// any other node only after a full lease without it. ErrDeposed: the
	// lease was lost already.
	HandOver(ctx context.Context, l *Lease, to string) error
	// AskHandover asks owner, the product's holder, to hand it to this
	// node; nothing answers.
	AskHandover(ctx context.Context, productID int64, owner string) error
	// ServeHandovers calls handle, on one goroutine, with every ask for
	// a product of this node (the product, the asking node) until the
	// subscription is stopped.
	ServeHandovers(ctx context.Context, handle func(productID int64, from string)) (Subscription, error)
	// RenewEvery is how often a held lease must be renewed.
	RenewEvery() time.Duration

	// LiveNodes lists the nodes that announced themselves within a lease,
	// this one included once connected, sorted.
	LiveNodes(ctx context.Context) ([]string, error)

	// Lost reports whether the node has been without the broker for a
	// full lease (disconnected, or connected with no write acknowledged):
	// it holds no valid lease then, and serves its clients standalone
	// until the broker is back.
	Lost() bool

	// Close stops every subscription and goroutine and closes the
	// connection. Leases are not released: they run out.
	Close() error
}

// Subscription is a running Subscribe.
type Subscription interface {
	// Stop ends the subscription; handle is not called once it returns.
	Stop()
}
