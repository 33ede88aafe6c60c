package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// OwnerChange is a write of a product's lease key that WatchOwners saw.
type OwnerChange struct {
	ProductID int64
	// Node holds the lease, or is the node it is handed to; empty once
	// the key is deleted (released).
	Node string
	// Handover: the holder stopped acting and handed the product to Node,
	// which has not taken it yet (HandOver).
	Handover bool
}

// WatchOwners calls handle, on one goroutine, with every write of a
// lease key (the current keys first), until the subscription is stopped:
// one watch for the whole node, instead of each reader asking. Each
// revision it sees also starts Claim's count of a full lease without
// renewal, so a reader that claims once a key has been quiet for a lease
// takes it at the first try.
func (b *JetStream) WatchOwners(ctx context.Context, handle func(OwnerChange)) (Subscription, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	// The watch lives until Stop, not ctx, which bounds only starting it
	// (a watch stops with the context it was made with).
	life, end := context.WithCancel(context.Background())
	unbind := context.AfterFunc(ctx, end)
	w, err := b.owners.Watch(life, "owner.>")
	if !unbind() && err == nil {
		_ = w.Stop()
		err = ctx.Err()
	}
	if err != nil {
		end()
		return nil, fmt.Errorf("cluster: watching the owners: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil {
				continue // the end of the current keys
			}
			id, err := strconv.ParseInt(strings.TrimPrefix(e.Key(), "owner."), 10, 64)
			if err != nil {
				continue // not a lease key: nobody here wrote it
			}
			change := OwnerChange{ProductID: id}
			if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
				b.forget(id)
			} else {
				change.Node, change.Handover = parseOwner(e.Value())
				b.saw(id, e.Revision())
			}
			handle(change)
		}
	}()
	return b.track(func() {
		_ = w.Stop()
		end()
		<-done
	})
}

// saw records the first sight of a revision of another node's lease key,
// read after its holder wrote it: Claim counts a full lease from then.
func (b *JetStream) saw(productID int64, revision uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if seen, ok := b.seen[productID]; !ok || seen.revision != revision {
		b.seen[productID] = seenLease{revision: revision, at: time.Now()}
	}
}
