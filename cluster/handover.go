package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handing a product over. After a failover, or when a node joins, a
// product stays with whoever took it; the node the rendezvous hash ranks
// higher asks the owner for it (AskHandover, on the owner's subject
// <prefix>.handover.<node>), and the owner, once it has stopped acting on
// the product, writes the lease key at its revision with a value that
// names both nodes (HandOver): the asker takes that key at once (Claim),
// any other node only once it has gone a full lease unchanged, as for a
// silent holder. So a handover never has two owners, and a target that
// never comes leaves the product free a lease later.

// handoverSep joins the two nodes of a handed-over key's value, "from>to":
// no node name holds it, so a node of an older build reads the value as
// an unknown holder and waits it out.
const handoverSep = ">"

// parseOwner reads a lease key's value: its holder, or for a handover the
// node it is handed to (handed true).
func parseOwner(v []byte) (node string, handed bool) {
	s := string(v)
	if i := strings.LastIndex(s, handoverSep); i >= 0 {
		return s[i+len(handoverSep):], true
	}
	return s, false
}

// HandOver gives the held lease l to node to, which asked for it. The
// caller must have stopped acting on the product: the lease ends here at
// once. The key then names to, which claims it at once. ErrDeposed means
// another node held the key already; after any other error the key is
// released, if it can be, so that any node may take the product.
func (b *JetStream) HandOver(ctx context.Context, l *Lease, to string) error {
	if err := CheckName("node", to); err != nil {
		return err
	}
	rev := l.lose()
	defer b.unwrote(l)
	if err := b.usable(); err != nil {
		return err
	}
	key := ownerKey(l.ProductID)
	_, err := b.owners.Update(ctx, key, []byte(b.cfg.Node+handoverSep+to), rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w (product %d, handing it over)", ErrDeposed, l.ProductID)
	}
	if err != nil {
		_ = b.owners.Delete(ctx, key, jetstream.LastRevision(rev))
		return fmt.Errorf("cluster: handing product %d over to %s: %w", l.ProductID, to, err)
	}
	return nil
}

// handoverSubject is where node hears the asks for its products.
func (b *JetStream) handoverSubject(node string) string {
	return b.cfg.Prefix + ".handover." + node
}

// AskHandover asks owner, the product's holder, to hand it to this node.
// Nothing answers: the owner hands over when it may (HandOver), and the
// asker asks again while it still should.
func (b *JetStream) AskHandover(_ context.Context, productID int64, owner string) error {
	if err := CheckName("node", owner); err != nil {
		return err
	}
	nc, err := b.conn()
	if err != nil {
		return err
	}
	body := strconv.FormatInt(productID, 10) + " " + b.cfg.Node
	if err := nc.Publish(b.handoverSubject(owner), []byte(body)); err != nil {
		return fmt.Errorf("cluster: asking %s for product %d: %w", owner, productID, err)
	}
	return nil
}

// ServeHandovers calls handle, on one goroutine, with every ask for one
// of this node's products (the product, the asking node), until the
// subscription is stopped.
func (b *JetStream) ServeHandovers(ctx context.Context, handle func(productID int64, from string)) (Subscription, error) {
	nc, err := b.conn()
	if err != nil {
		return nil, err
	}
	asks := make(chan *nats.Msg, 256) // a full one drops asks: they come again
	sub, err := nc.ChanSubscribe(b.handoverSubject(b.cfg.Node), asks)
	if err == nil {
		err = nc.FlushWithContext(ctx) // subscribed at the server on return
	}
	if err != nil {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		return nil, fmt.Errorf("cluster: serving handovers: %w", err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case m := <-asks:
				id, from, ok := strings.Cut(string(m.Data), " ")
				productID, err := strconv.ParseInt(id, 10, 64)
				if !ok || err != nil || CheckName("node", from) != nil {
					continue // not an ask a node of this build sent
				}
				handle(productID, from)
			}
		}
	}()
	return b.track(func() {
		_ = sub.Unsubscribe()
		close(stop)
		<-done
	})
}

// conn is the connection, once connected and until closed.
func (b *JetStream) conn() (*nats.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, ErrClosed
	case b.nc == nil:
		return nil, errors.New("cluster: not connected")
	}
	return b.nc, nil
}
