package hub

import (
	"testing"
	"time"
)

// One change from the owner's stream to a reader's subscriber: through the
// owner's fenced append, NATS and the reader's one subscription.
func BenchmarkClusterCrossNodeDelivery(b *testing.B) {
	r := newClusterRig(b)
	owner := r.node("gw-a", nil)
	const id = 41
	r.ft.set(id, r.lot(id, 100, 4))
	owner.h.Subscribe(id, new(changeLog))
	r.oneStream(id, 5*time.Second)
	reader := r.node("gw-b", nil)
	got := &recorder{ch: make(chan *Change, 16)}
	reader.h.Subscribe(id, got)
	price := 100.0
	for b.Loop() {
		price++
		r.bid(id, price, int(price))
		for c := range got.ch {
			if c.Product.CurrentBid == price {
				break
			}
		}
	}
}
