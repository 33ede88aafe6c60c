package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream is the Bus over NATS JetStream:
//
//   - the log is the stream <prefix>_FEED, one subject <prefix>.feed.<id>
//     per product, keeping `history` messages per subject for
//     `history_age`; an append is fenced by the expected last sequence
//     of its subject;
//   - the leases are the keys owner.<id> of the bucket <prefix>_owners,
//     written by compare-and-set on their revision;
//   - presence is the bucket <prefix>_nodes, one key per node, put every
//     third of a lease and expiring after a lease.
type JetStream struct {
	cfg Config

	mu     sync.Mutex
	nc     *nats.Conn
	js     jetstream.JetStream
	feed   jetstream.Stream
	owners jetstream.KeyValue
	nodes  jetstream.KeyValue
	subs   map[*subscription]struct{}
	seen   map[int64]seenLease // leases of other nodes, as Claim first saw them
	// wrote is the revision of each lease key this process last wrote and
	// has not seen deleted or taken: its own key, left behind when it
	// stopped acting without a word to NATS, it may take again at once.
	wrote map[int64]uint64
	// leases is the last lease this process made of each product: its
	// own key may be taken again at once only once that lease has ended
	// (ownWrite), never while a feed of this process may still act on it.
	leases   map[int64]*Lease
	closed   bool
	stopBeat context.CancelFunc // ends announce and serveReads
	beatDone chan struct{}
	// reads takes Backfill's reads to serveReads, which closes readsDone
	// when it ends (cluster/backfill.go).
	reads     chan *logRead
	readsDone chan struct{}
	// noDirectAt is when the stream was last found to serve no direct
	// get, in Unix nanoseconds; 0: never.
	noDirectAt atomic.Int64
	// downSince is when the connection dropped; zero while connected.
	// answeredAt is when JetStream last acknowledged a write of this
	// node (cluster/lost.go).
	downSince  time.Time
	answeredAt time.Time
	// beatAt is the presence goroutine's last tick, resumedAt its first
	// tick after a stall of the process, lostSaid Lost's last verdict
	// (cluster/lost.go).
	beatAt, resumedAt time.Time
	lostSaid          bool
	// now is the clock of the loss's reckoning: time.Now, or a test's
	// that jumps as a stalled process's does.
	now func() time.Time
	// beatNow asks the presence goroutine for a put at once.
	beatNow chan struct{}
}

// seenLease is a lease revision of another node and when this node first
// saw it, by its own monotonic clock.
type seenLease struct {
	revision uint64
	at       time.Time
}

var _ Bus = (*JetStream)(nil)

// dialTimeout bounds one attempt to reach one NATS server.
const dialTimeout = 5 * time.Second

// New checks cfg (completed with its defaults) and returns a bus that is
// not connected yet: it does no network I/O.
func New(cfg Config) (*JetStream, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &JetStream{
		cfg:     cfg,
		subs:    make(map[*subscription]struct{}),
		seen:    make(map[int64]seenLease),
		wrote:   make(map[int64]uint64),
		leases:  make(map[int64]*Lease),
		beatNow: make(chan struct{}, 1),
		reads:   make(chan *logRead),
		now:     time.Now,
	}, nil
}

// Config returns the completed config.
func (b *JetStream) Config() Config { return b.cfg }

// Node is this node's name.
func (b *JetStream) Node() string { return b.cfg.Node }

// RenewEvery is how often a held lease must be renewed: a third of it.
func (b *JetStream) RenewEvery() time.Duration { return b.cfg.renewEvery() }

// The names of the streams, buckets and subjects.
func (b *JetStream) feedStream() string { return b.cfg.Prefix + "_FEED" }
func (b *JetStream) feedSubjects() string {
	return b.cfg.Prefix + ".feed.>"
}
func (b *JetStream) feedSubject(productID int64) string {
	return fmt.Sprintf("%s.feed.%d", b.cfg.Prefix, productID)
}
func ownerKey(productID int64) string { return fmt.Sprintf("owner.%d", productID) }

// Connect dials NATS, creates or updates the stream and buckets, and
// starts announcing this node. Once connected, the client reconnects on
// its own for as long as the bus is open.
func (b *JetStream) Connect(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrClosed
	case b.nc != nil:
		return errors.New("cluster: already connected")
	}
	opts := []nats.Option{
		nats.Name("nellis-edge " + b.cfg.Node),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.NoCallbacksAfterClientClose(),
		nats.DisconnectErrHandler(b.disconnected),
		nats.ReconnectHandler(b.reconnected),
		// A server gone silent (a cut network drops nothing, it just stops)
		// is noticed within about a lease, not the default minutes.
		nats.PingInterval(b.cfg.renewEvery()),
		nats.MaxPingsOutstanding(2),
	}
	// Each server gets at most dialTimeout, and all of them no more than ctx.
	timeout := dialTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(time.Until(dl), timeout), time.Millisecond)
	}
	opts = append(opts, nats.Timeout(timeout))
	switch {
	case b.cfg.Creds != "":
		opts = append(opts, nats.UserCredentials(b.cfg.Creds))
	case b.cfg.Token != "":
		opts = append(opts, nats.Token(b.cfg.Token))
	case b.cfg.User != "":
		opts = append(opts, nats.UserInfo(b.cfg.User, b.cfg.Password))
	}
	if b.cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(b.cfg.TLSCA))
	}
	nc, err := nats.Connect(strings.Join(b.cfg.Servers, ","), opts...)
	if err != nil {
		// nats.go's errors name the server, never the token or password.
		return fmt.Errorf("cluster: connecting to NATS: %w", err)
	}
	if err := b.setUp(ctx, nc); err != nil {
		nc.Close()
		return err
	}
	b.nc = nc
	beat, stop := context.WithCancel(context.Background())
	b.stopBeat = stop
	b.beatDone = make(chan struct{})
	b.readsDone = make(chan struct{})
	go b.announce(beat, b.beatDone)
	go b.serveReads(beat, b.readsDone)
	return nil
}

// setUp creates or updates the stream and buckets and announces the node
// once, so that it is live as soon as Connect returns.
func (b *JetStream) setUp(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	historyAge := time.Duration(b.cfg.HistoryAge)
	lease := time.Duration(b.cfg.Lease)
	feed, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              b.feedStream(),
		Description:       "Nellis Edge: each product's recent changes, appended by its owner",
		Subjects:          []string{b.feedSubjects()},
		MaxMsgsPerSubject: int64(b.cfg.History),
		MaxAge:            historyAge,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		Replicas:          b.cfg.Replicas,
		Duplicates:        min(2*time.Minute, historyAge),
		AllowDirect:       true,
	})
	if err != nil {
		return fmt.Errorf("cluster: creating stream %s: %w", b.feedStream(), err)
	}
	owners, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.cfg.Prefix + "_owners",
		Description: "Nellis Edge: which node owns each product",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("cluster: creating bucket %s_owners: %w", b.cfg.Prefix, err)
	}
	nodes, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.cfg.Prefix + "_nodes",
		Description: "Nellis Edge: the live nodes, each put every third of a lease",
		History:     1,
		TTL:         lease,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("cluster: creating bucket %s_nodes: %w", b.cfg.Prefix, err)
	}
	if _, err := nodes.Put(ctx, b.cfg.Node, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("cluster: announcing node %s: %w", b.cfg.Node, err)
	}
	b.js, b.feed, b.owners, b.nodes = js, feed, owners, nodes
	b.answeredAt = b.now()
	b.beatAt = b.answeredAt
	return nil
}

// announce puts this node's presence key every third of a lease, and at
// once when the connection is back, until ctx ends. Each put also tells
// whether JetStream answers (cluster/lost.go). A put may take up to a
// lease: a slow answer on a loaded machine is still an answer. Puts
// overlap rather than wait on one that hangs (a server that lost its
// JetStream quorum may never answer), so one is sent every third of a
// lease, at most three on their way. A failed put is not retried before
// the next: while NATS is away nobody can read the key anyway.
func (b *JetStream) announce(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	every := b.cfg.renewEvery()
	lease := time.Duration(b.cfg.Lease)
	t := time.NewTicker(every)
	defer t.Stop()
	slots := make(chan struct{}, 3)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.beatNow:
		}
		b.beat()
		select {
		case slots <- struct{}{}:
		default:
			continue // three on their way already
		}
		wg.Go(func() {
			defer func() { <-slots }()
			put, cancel := context.WithTimeout(ctx, lease)
			defer cancel()
			if _, err := b.nodes.Put(put, b.cfg.Node, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err == nil {
				b.answered()
			}
		})
	}
}

// LiveNodes lists the nodes whose presence key has not expired, sorted.
func (b *JetStream) LiveNodes(ctx context.Context) ([]string, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	keys, err := b.nodes.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: listing nodes: %w", err)
	}
	slices.Sort(keys)
	return keys, nil
}

// usable says whether the bus may be used: connected and not closed.
func (b *JetStream) usable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrClosed
	case b.nc == nil:
		return errors.New("cluster: not connected")
	}
	return nil
}

// Close stops the subscriptions and the presence goroutine, then closes
// the connection. Leases are left to run out; Release them first for a
// quick handover.
func (b *JetStream) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	nc, stop, done, readsDone := b.nc, b.stopBeat, b.beatDone, b.readsDone
	b.mu.Unlock()
	for _, s := range subs {
		s.Stop()
	}
	if stop != nil {
		stop()
		<-done
		<-readsDone
	}
	if nc != nil {
		nc.Close()
	}
	return nil
}
