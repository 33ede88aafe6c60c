package cluster

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Keeper renews a node's leases every RenewEvery (a few at once), from
// NewKeeper until Close. A lease another node took is dropped and
// reported to lost; one whose renewals fail (NATS away) stays and is
// renewed again, and its Valid says meanwhile whether its holder may act.
type Keeper struct {
	bus  Bus
	lost func(productID int64)

	mu     sync.Mutex
	leases map[int64]*Lease
	closed bool

	stop chan struct{}
	done chan struct{}
}

// NewKeeper starts renewing the leases it is given. lost is called on one
// of the keeper's goroutines, after the lease has been dropped; it must
// not wait on the keeper.
func NewKeeper(bus Bus, lost func(productID int64)) *Keeper {
	k := &Keeper{
		bus:    bus,
		lost:   lost,
		leases: make(map[int64]*Lease),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go k.run()
	return k
}

// Add hands a claimed lease to the keeper; false after Close (the lease
// is then released).
func (k *Keeper) Add(l *Lease) bool {
	k.mu.Lock()
	if !k.closed {
		k.leases[l.ProductID] = l
	}
	closed := k.closed
	k.mu.Unlock()
	if closed {
		ctx, cancel := context.WithTimeout(context.Background(), k.bus.RenewEvery())
		_ = k.bus.Release(ctx, l)
		cancel()
	}
	return !closed
}

// Lease returns the product's lease, nil when the keeper holds none.
func (k *Keeper) Lease(productID int64) *Lease {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.leases[productID]
}

// Release drops the product's lease and gives it up, for a quick handover.
func (k *Keeper) Release(ctx context.Context, productID int64) error {
	k.mu.Lock()
	l := k.leases[productID]
	delete(k.leases, productID)
	k.mu.Unlock()
	if l == nil {
		return nil
	}
	return k.bus.Release(ctx, l)
}

// HandOver drops the product's lease and hands it to node to
// (Bus.HandOver); its holder stopped acting on it first.
func (k *Keeper) HandOver(ctx context.Context, productID int64, to string) error {
	k.mu.Lock()
	l := k.leases[productID]
	delete(k.leases, productID)
	k.mu.Unlock()
	if l == nil {
		return ErrDeposed
	}
	// A renewal of l on its way would race the handover for the key's
	// revision, and the handover be lost: wait for it. No other starts,
	// the keeper no longer holding l.
	l.renewal.Lock()
	defer l.renewal.Unlock()
	return k.bus.HandOver(ctx, l, to)
}

// Drop stops renewing the product's lease and ends it for this node
// without a word to the broker: for a node cut off from it, whose key
// runs out by itself (another node takes it over a lease later).
func (k *Keeper) Drop(productID int64) {
	k.mu.Lock()
	l := k.leases[productID]
	delete(k.leases, productID)
	k.mu.Unlock()
	if l != nil {
		l.lose()
	}
}

// Close ends the renewals and releases every lease (a graceful stop hands
// over at once); the keeper takes no lease after it.
func (k *Keeper) Close(ctx context.Context) error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	held := k.leases
	k.leases = nil
	k.mu.Unlock()
	close(k.stop)
	<-k.done
	var errs []error
	for _, l := range held {
		errs = append(errs, k.bus.Release(ctx, l))
	}
	return errors.Join(errs...)
}

func (k *Keeper) run() {
	defer close(k.done)
	t := time.NewTicker(k.bus.RenewEvery())
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
		k.renewAll()
	}
}

// renewParallel bounds the renewals on their way at once: one after the
// other, a node's renewals would take longer than a renewal period from
// a few dozen leases up when NATS answers slowly (a loaded machine, a
// distant server), and its leases lapse.
const renewParallel = 16

// renewAll renews each held lease, renewParallel at a time, each bounded
// by a renewal period so that one slow answer does not hold the others.
func (k *Keeper) renewAll() {
	k.mu.Lock()
	held := make([]*Lease, 0, len(k.leases))
	for _, l := range k.leases {
		held = append(held, l)
	}
	k.mu.Unlock()
	slots := make(chan struct{}, renewParallel)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, l := range held {
		select {
		case <-k.stop:
			return
		case slots <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if errors.Is(k.renew(l), ErrDeposed) {
				k.deposed(l)
			}
		})
	}
}

// deposed drops a lease another node took and reports it.
func (k *Keeper) deposed(l *Lease) {
	k.mu.Lock()
	mine := k.leases[l.ProductID] == l
	if mine {
		delete(k.leases, l.ProductID)
	}
	k.mu.Unlock()
	if mine && k.lost != nil {
		k.lost(l.ProductID)
	}
}

// renew renews l, bounded by a renewal period, unless it was handed over
// or released meanwhile.
func (k *Keeper) renew(l *Lease) error {
	l.renewal.Lock()
	defer l.renewal.Unlock()
	k.mu.Lock()
	held := k.leases[l.ProductID] == l
	k.mu.Unlock()
	if !held {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.bus.RenewEvery())
	defer cancel()
	return k.bus.Renew(ctx, l)
}
