package hub

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/cluster"
)

// countingBus counts a node's claims.
type countingBus struct {
	*cluster.JetStream
	claims atomic.Int64
}

func (b *countingBus) Claim(ctx context.Context, productID int64) (*cluster.Lease, error) {
	b.claims.Add(1)
	return b.JetStream.Claim(ctx, productID)
}

// Readers learn of their owner from the node's one watch of the lease
// keys: while the owner lives they claim only at the fallback's slow rate
// (not every renewal period); when it stops, a reader owns the lot at
// once; when it dies, within lease + 1 s.
func TestClusterReadersWatchTheOwnerInsteadOfClaiming(t *testing.T) {
	r := newClusterRig(t)
	buses := map[string]*countingBus{}
	nodes := map[string]*rigNode{}
	var list []*rigNode
	for _, name := range []string{"gw-a", "gw-b", "gw-c"} {
		n := r.node(name, func(j *cluster.JetStream) cluster.Bus {
			b := &countingBus{JetStream: j}
			buses[name] = b
			return b
		})
		nodes[name] = n
		list = append(list, n)
	}
	const id = 41
	r.ft.set(id, r.lot(id, 100, 4))
	r.watchStreams(id)
	logs := subscribeAll(list, id)
	owner := r.oneStream(id, 5*time.Second).node

	start := map[string]int64{}
	for name, b := range buses {
		start[name] = b.claims.Load()
	}
	const steady = 3 * time.Second
	time.Sleep(steady)
	for name, b := range buses {
		if name == owner {
			continue
		}
		// Every renewal period would be 9; the fallback, every lease, 3.
		if n := b.claims.Load() - start[name]; n > 4 {
			t.Errorf("reader %s claimed %d times in %v while %s owned the lot, want at most 4", name, n, steady, owner)
		}
	}

	// A graceful stop deletes the key: the watch wakes a reader at once,
	// well within the fallback's lease.
	stopped := time.Now()
	nodes[owner].h.Close()
	next := r.oneStreamNot(id, owner, 250*time.Millisecond)
	t.Logf("%s owns the lot %v after %s stopped", next.node, time.Since(stopped).Round(time.Millisecond), owner)

	// Killed, no release, once it has renewed a few times: the watch
	// sees the key go quiet for a lease.
	time.Sleep(testLease)
	dead := nodes[next.node]
	_ = dead.jet.Close()
	killed := time.Now()
	dead.h.Close()
	last := r.oneStream(id, testLease+time.Second)
	if last.node == dead.name {
		t.Fatal("the dead hub opened a stream")
	}
	t.Logf("%s owns the lot %v after %s died", last.node, time.Since(killed).Round(time.Millisecond), dead.name)
	r.bid(id, 101, 5)
	logs[last.node][id].waitPrice(t, last.node, 101)
}
