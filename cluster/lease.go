package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Lease is this node's hold on a product. Its holder may act on the
// product (stream, poll, bid, append) only while Valid: that ends a
// safety margin before the lease could have run out for any other node,
// by this node's monotonic clock, so an owner that stalls stops before
// another can take over.
type Lease struct {
	ProductID int64
	Node      string

	// renewal is held by the Keeper around a renewal and a handover, so
	// that the two never race for the key's revision.
	renewal sync.Mutex

	mu         sync.Mutex
	revision   uint64    // the key's revision this node last wrote
	validUntil time.Time // with its monotonic reading
	lost       bool
}

// Valid reports whether the holder may still act on the product.
func (l *Lease) Valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.lost && time.Now().Before(l.validUntil)
}

// ValidUntil is when the holder must have stopped acting unless a renewal
// succeeds first; the zero time once the lease is lost or released.
func (l *Lease) ValidUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return time.Time{}
	}
	return l.validUntil
}

// written records a successful write of the lease key, sent at sent:
// another node that reads this revision reads it after sent, and waits a
// full lease from then before taking over.
// It returns false, recording nothing, for a lease lost or released
// meanwhile.
func (l *Lease) written(revision uint64, sent time.Time, lease, margin time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return false
	}
	l.revision = revision
	l.validUntil = sent.Add(lease - margin)
	return true
}

// lose ends the lease for its holder; it returns the last revision.
func (l *Lease) lose() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost = true
	return l.revision
}

// ended reports whether the lease was lost or released: its holder has
// stopped acting on it for good.
func (l *Lease) ended() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

func (l *Lease) current() (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.revision, l.lost
}

// HeldError is Claim's answer when another node's lease may still be
// valid: it matches ErrHeld and names the holder, for the status page.
type HeldError struct {
	ProductID int64
	Node      string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%v (product %d, by node %s)", ErrHeld, e.ProductID, e.Node)
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Claim creates the product's lease key, or takes it over from another
// node once this node has seen the same revision of it for a full lease.
// The other node's clock is never read: only this node's, between two
// reads of the key. A key this process wrote last and stopped acting on
// (NATS away, a stall) it takes again at once; one naming this node that
// another process wrote (a restart under the same name) is waited out
// like any other, since two processes given one name must not both own.
func (b *JetStream) Claim(ctx context.Context, productID int64) (*Lease, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	key := ownerKey(productID)
	lease, margin := time.Duration(b.cfg.Lease), b.cfg.safetyMargin()
	sent := time.Now()
	rev, err := b.owners.Create(ctx, key, []byte(b.cfg.Node))
	if err == nil {
		b.forget(productID)
		return b.newLease(productID, rev, sent, lease, margin), nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("cluster: claiming product %d: %w", productID, err)
	}
	e, err := b.owners.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrHeld // released meanwhile: free at the next claim
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: claiming product %d: %w", productID, err)
	}
	// This process's own key, unchanged since it stopped acting on it (NATS
	// was away, or it stalled): nobody else took it, and writing at its
	// revision beats anyone counting a lease on it. Or the key was handed
	// to this node by its holder, who stopped acting first. Either way it
	// is taken at once, at the revision read.
	holder, handed := parseOwner(e.Value())
	if b.ownWrite(productID, e) || (handed && holder == b.cfg.Node) {
		return b.takeOver(ctx, productID, e.Revision())
	}
	// Read after the holder wrote this revision, so a full lease from now
	// is past the end of the holder's validity.
	now := time.Now()
	held := &HeldError{ProductID: productID, Node: holder}
	b.mu.Lock()
	seen, ok := b.seen[productID]
	if !ok || seen.revision != e.Revision() {
		b.seen[productID] = seenLease{revision: e.Revision(), at: now}
		b.mu.Unlock()
		return nil, held
	}
	b.mu.Unlock()
	if now.Sub(seen.at) < lease {
		return nil, held
	}
	return b.takeOver(ctx, productID, e.Revision())
}

// takeOver writes this node into the product's lease key at the revision
// Claim read; ErrHeld when the key was renewed or taken meanwhile.
func (b *JetStream) takeOver(ctx context.Context, productID int64, revision uint64) (*Lease, error) {
	sent := time.Now()
	rev, err := b.owners.Update(ctx, ownerKey(productID), []byte(b.cfg.Node), revision)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil, ErrHeld
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: claiming product %d: %w", productID, err)
	}
	b.forget(productID)
	return b.newLease(productID, rev, sent, time.Duration(b.cfg.Lease), b.cfg.safetyMargin()), nil
}

func (b *JetStream) newLease(productID int64, rev uint64, sent time.Time, lease, margin time.Duration) *Lease {
	b.answered()
	l := &Lease{ProductID: productID, Node: b.cfg.Node}
	l.written(rev, sent, lease, margin)
	b.mu.Lock()
	b.wrote[productID] = rev
	b.leases[productID] = l
	b.mu.Unlock()
	return l
}

// wroteBy records l's renewal of its key, unless a newer lease of this
// process holds the product now.
func (b *JetStream) wroteBy(l *Lease, rev uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.leases[l.ProductID] == l {
		b.wrote[l.ProductID] = rev
	}
}

// unwrote forgets l's write of its key (deleted, handed over, or written
// by another node since): unless a newer lease of this process wrote the
// key since, which stays its own.
func (b *JetStream) unwrote(l *Lease) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.leases[l.ProductID]; cur == nil || cur == l {
		delete(b.wrote, l.ProductID)
		delete(b.leases, l.ProductID)
	}
}

// ownWrite reports whether the key is, unchanged, this process's last
// write of it, and the lease that wrote it has ended (it was dropped,
// lost or released: its holder stopped acting). Another process under the
// same name (a restart) never matches, and waits the key out like any
// node; nor does a lease of this process that may still act, whose feed
// may be ending while another feed of the product starts here.
func (b *JetStream) ownWrite(productID int64, e jetstream.KeyValueEntry) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	rev, ok := b.wrote[productID]
	if l := b.leases[productID]; l != nil && !l.ended() {
		return false
	}
	return ok && rev == e.Revision() && string(e.Value()) == b.cfg.Node
}

// forget drops what Claim saw of another node's lease on the product.
func (b *JetStream) forget(productID int64) {
	b.mu.Lock()
	delete(b.seen, productID)
	b.mu.Unlock()
}

// Renew writes the lease key again at the revision this node last wrote.
// Another revision there means another node took the product: the lease
// is lost (ErrDeposed). Any other error leaves the lease to lapse at
// ValidUntil unless a later Renew succeeds.
func (b *JetStream) Renew(ctx context.Context, l *Lease) error {
	nc, err := b.conn()
	if err != nil {
		return err
	}
	rev, lost := l.current()
	if lost {
		return ErrDeposed
	}
	if !nc.IsConnected() {
		// Not sent into the reconnect buffer: a renewal that waited
		// there past its caller's deadline was written on the reconnect
		// all the same, moved the key past rev, and deposed the owner
		// at its next renewal after every NATS restart.
		return fmt.Errorf("cluster: renewing product %d: %w", l.ProductID, nats.ErrConnectionReconnecting)
	}
	sent := time.Now()
	next, err := b.owners.Update(ctx, ownerKey(l.ProductID), []byte(b.cfg.Node), rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
		l.lose()
		b.unwrote(l)
		return fmt.Errorf("%w (product %d)", ErrDeposed, l.ProductID)
	}
	if err != nil {
		return fmt.Errorf("cluster: renewing product %d: %w", l.ProductID, err)
	}
	b.answered()
	if !l.written(next, sent, time.Duration(b.cfg.Lease), b.cfg.safetyMargin()) {
		// Released while this renewal was on its way: Release deleted
		// at the revision before it, or not at all. Give up the one just
		// written, or the key would hold the product for a full lease.
		err := b.owners.Delete(ctx, ownerKey(l.ProductID), jetstream.LastRevision(next))
		if err != nil && !isWrongLastSeq(err) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("cluster: releasing product %d after a renewal: %w", l.ProductID, err)
		}
		b.unwrote(l)
		return fmt.Errorf("%w (product %d, released)", ErrDeposed, l.ProductID)
	}
	b.wroteBy(l, next)
	return nil
}

// Release stops the lease at once, then deletes the key if it still holds
// this node's last revision, so the next claimer need not wait.
func (b *JetStream) Release(ctx context.Context, l *Lease) error {
	rev := l.lose()
	if err := b.usable(); err != nil {
		return err
	}
	err := b.owners.Delete(ctx, ownerKey(l.ProductID), jetstream.LastRevision(rev))
	if isWrongLastSeq(err) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		b.unwrote(l)
		return nil // another node holds it already
	}
	if err != nil {
		return fmt.Errorf("cluster: releasing product %d: %w", l.ProductID, err)
	}
	b.unwrote(l)
	return nil
}
