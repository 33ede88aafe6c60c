package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading the log's past (Backfill) for the node's new feeds.
//
// A consumer per read cost three API round trips through the stream
// leader and counted against the stream's consumer limit (1,000 by
// default since nats-server 2.11): a node whose clients asked for 2,000
// lots at once saw most reads refused (TestBackfillOfManyLotsAtOnce). A
// direct get is answered by any replica without a consumer. The stream
// holds the products' entries interleaved, so the server walks every entry
// between a product's oldest and newest to find its own: reading one
// product costs the server a scan of about the whole log, cheap per entry;
// sending the whole log costs far more per entry, but once for any number
// of products. So one goroutine serves the reads: a few products are read
// one by one, a batched direct get of each one's subject; many are read
// by a sweep of the whole log in batches, which hands each product its
// entries. A product asked for during a sweep joins it where it is and is
// done when the sweep comes round to that point again: no read waits for
// more than one sweep.

// sweepAt is the number of products waiting at once that are read by a
// sweep of the whole log rather than one by one: a product's own read
// costs the server a scan of the log, a sweep about 400 such scans
// (BenchmarkBackfillOneOfManyLots, TestBackfillOfManyLotsAtOnce).
const sweepAt = 128

// sweepBatch is how many entries one direct get of a sweep asks for, at
// most sweepBytes of them: the client reads a batch on the goroutine that
// also reads the server's pongs, and a batch that takes longer to read
// than two pings (a lease) would have the connection taken for stale. A
// variable for the tests.
var sweepBatch = 512

const sweepBytes = 256 << 10

// pageWait bounds the wait for one batch of a sweep, and maxRead a read
// whose callers set no deadline.
const (
	pageWait = 10 * time.Second
	maxRead  = 30 * time.Second
)

// logRead is one Backfill waiting for the product's stored entries.
type logRead struct {
	ctx  context.Context
	id   int64
	done chan logResult // buffered 1
}

type logResult struct {
	all []Entry
	err error
}

// Backfill reads the product's log from its oldest stored entry and keeps
// the newest epoch's entries above sinceSeq. It never returns part of the
// log without an error.
func (b *JetStream) Backfill(ctx context.Context, productID int64, sinceSeq uint64) ([]Entry, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	ended := b.readsDone
	b.mu.Unlock()
	r := &logRead{ctx: ctx, id: productID, done: make(chan logResult, 1)}
	var res logResult
	select {
	case b.reads <- r:
		select {
		case res = <-r.done:
		case <-ctx.Done():
			res.err = ctx.Err()
		}
	case <-ctx.Done():
		res.err = ctx.Err()
	case <-ended:
		res.err = ErrClosed
	}
	if res.err != nil {
		return nil, fmt.Errorf("cluster: reading product %d's log: %w", productID, res.err)
	}
	all := res.all
	if len(all) == 0 {
		return nil, nil
	}
	epoch := all[len(all)-1].Epoch
	var out []Entry
	for _, e := range all {
		if e.Epoch == epoch && e.Seq > sinceSeq {
			out = append(out, e)
		}
	}
	return out, nil
}

// serveReads answers Backfill's reads until ctx ends.
func (b *JetStream) serveReads(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for {
		var waiting []*logRead
		select {
		case <-ctx.Done():
			return
		case r := <-b.reads:
			waiting = b.gather(append(waiting, r))
		}
		byID := make(map[int64][]*logRead)
		for _, r := range waiting {
			byID[r.id] = append(byID[r.id], r)
		}
		if len(byID) >= sweepAt && b.direct() {
			b.sweep(ctx, waiting)
		} else {
			b.readEach(ctx, byID)
		}
	}
}

// gather adds the reads waiting to be taken to reads.
func (b *JetStream) gather(reads []*logRead) []*logRead {
	for {
		select {
		case r := <-b.reads:
			reads = append(reads, r)
		default:
			return reads
		}
	}
}

// answer gives res to each read still waiting.
func answer(reads []*logRead, res logResult) {
	for _, r := range reads {
		r.done <- res
	}
}

// live drops the reads whose Backfill returned already, and tells the
// latest deadline of the rest (or maxRead from now).
func live(reads []*logRead) ([]*logRead, time.Time) {
	reads = slices.DeleteFunc(reads, func(r *logRead) bool { return r.ctx.Err() != nil })
	bound := time.Now().Add(maxRead)
	var latest time.Time
	for _, r := range reads {
		if dl, ok := r.ctx.Deadline(); ok && dl.After(latest) {
			latest = dl
		} else if !ok {
			latest = bound
		}
	}
	if latest.After(bound) {
		latest = bound
	}
	return reads, latest
}

// readEach reads each product's log on its own.
func (b *JetStream) readEach(ctx context.Context, byID map[int64][]*logRead) {
	for id, reads := range byID {
		reads, until := live(reads)
		if len(reads) == 0 {
			continue
		}
		var res logResult
		if nc, err := b.conn(); err != nil {
			res.err = err
		} else {
			rctx, cancel := context.WithDeadline(ctx, until)
			res.all, res.err = b.readProduct(rctx, nc, id)
			cancel()
		}
		answer(reads, res)
	}
}

// readProduct reads every stored entry of the product, oldest first: by
// batched direct gets of its subject, or through a consumer if the stream
// serves no direct get.
func (b *JetStream) readProduct(ctx context.Context, nc *nats.Conn, productID int64) ([]Entry, error) {
	if !b.direct() {
		return b.readByConsumer(ctx, productID)
	}
	var all []Entry
	err := b.readDirect(ctx, nc, b.feedSubject(productID), b.cfg.History, true, func(_ string, e entryMsg) error {
		ent, err := e.decode(productID)
		if err == nil {
			all = append(all, ent)
		}
		return err
	})
	if errors.Is(err, nats.ErrNoResponders) {
		return b.readByConsumer(ctx, productID)
	}
	return all, err
}

// sweepWant is a product a sweep reads for.
type sweepWant struct {
	reads []*logRead
	// from is the first stream sequence the sweep read after the product
	// joined; wrapped: the sweep passed the log's end since, and reads
	// the rest, below from.
	from    uint64
	wrapped bool
	res     logResult
}

// sweep reads the whole log, batch after batch, for the products of
// reads and those asked for meanwhile, until each has all its entries.
func (b *JetStream) sweep(ctx context.Context, reads []*logRead) {
	want := make(map[int64]*sweepWant)
	// later holds the reads of a product the sweep is finishing in its
	// second round: they may want entries appended after the sweep passed
	// the log's end, so they start again once it is done.
	var later []*logRead
	join := func(rs []*logRead, at uint64) {
		for _, r := range rs {
			w := want[r.id]
			if w != nil && w.wrapped {
				later = append(later, r)
				continue
			}
			if w == nil {
				w = &sweepWant{from: at}
				want[r.id] = w
			}
			w.reads = append(w.reads, r)
		}
	}
	finish := func(id int64, w *sweepWant) {
		slices.SortFunc(w.res.all, func(a, b Entry) int { return cmp.Compare(a.StreamSeq, b.StreamSeq) })
		answer(w.reads, w.res)
		delete(want, id)
	}
	failAll := func(err error) {
		for id, w := range want {
			w.res = logResult{err: err}
			finish(id, w)
		}
		answer(later, logResult{err: err})
	}
	join(reads, 1)
	nc, err := b.conn()
	if err != nil {
		failAll(err)
		return
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		failAll(err)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	prefix := b.cfg.Prefix + ".feed."
	take := func(subject string, e entryMsg) error {
		id, err := strconv.ParseInt(strings.TrimPrefix(subject, prefix), 10, 64)
		if err != nil {
			return nil // not a product's subject
		}
		w := want[id]
		if w == nil || w.res.err != nil || (w.wrapped && e.seq >= w.from) {
			return nil // not asked for, failed, or read in the last round
		}
		ent, err := e.decode(id)
		w.res.all, w.res.err = append(w.res.all, ent), err
		return nil
	}
	next := uint64(1)
	for {
		for id, w := range want {
			if w.reads, _ = live(w.reads); len(w.reads) == 0 {
				delete(want, id)
			}
		}
		if len(want) == 0 {
			if len(later) == 0 {
				return
			}
			join(later, next) // the product they waited for is gone
			later = nil
		}
		pctx, cancel := context.WithTimeout(ctx, pageWait)
		after, err := b.readPage(pctx, nc, sub, inbox, next, take)
		cancel()
		switch {
		case errors.Is(err, errNotBatched), errors.Is(err, nats.ErrNoResponders):
			// A server before 2.11, or a stream without direct gets: each
			// product is read on its own.
			byID := make(map[int64][]*logRead, len(want))
			for id, w := range want {
				byID[id] = w.reads
				delete(want, id)
			}
			for _, r := range later {
				byID[r.id] = append(byID[r.id], r)
			}
			b.readEach(ctx, byID)
			return
		case err != nil:
			failAll(err)
			return
		case after == 0: // the log's end: read from the start again
			for id, w := range want {
				if w.from <= 1 || w.wrapped {
					finish(id, w)
				} else {
					w.wrapped = true
				}
			}
			next = 1
		default:
			next = after
			for id, w := range want {
				if w.wrapped && next >= w.from {
					finish(id, w)
				}
			}
		}
		waiting := later
		later = nil
		join(b.gather(waiting), next)
	}
}

// readPage asks for the log's next batch from stream sequence from and
// hands its entries to take: the sequence to ask from next, or 0 at the
// log's end.
func (b *JetStream) readPage(ctx context.Context, nc *nats.Conn, sub *nats.Subscription, inbox string, from uint64, take func(string, entryMsg) error) (uint64, error) {
	data, err := json.Marshal(directGet{Seq: from, NextFor: b.feedSubjects(), Batch: sweepBatch, MaxBytes: sweepBytes})
	if err != nil {
		return 0, err
	}
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+b.feedStream(), inbox, data); err != nil {
		return 0, err
	}
	return b.readBatch(ctx, sub, false, take)
}

// errNotBatched: the server answered a batched direct get with a single
// message, as servers before 2.11 do.
var errNotBatched = errors.New("cluster: the server answers no batched direct get")

// directGet is a direct get request (nats-server's JSApiMsgGetRequest):
// the first messages of subject NextFor from stream sequence Seq on, at
// most Batch of them. A server before 2.11 ignores Batch and answers
// with one message.
type directGet struct {
	Seq      uint64 `json:"seq"`
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// The headers of a direct get's answer.
const (
	headerStatus     = "Status"
	headerSubject    = "Nats-Subject"
	headerSequence   = "Nats-Sequence"    // a message's stream sequence
	headerNumPending = "Nats-Num-Pending" // a batch's messages still to read
)

// entryMsg is a stored message a direct get brought.
type entryMsg struct {
	m   *nats.Msg
	seq uint64
}

func (e entryMsg) decode(productID int64) (Entry, error) {
	return decodeEntry(productID, e.m.Header, e.m.Data, e.seq)
}

// readDirect hands each of the stream's messages on filter to each, in
// order, by batched direct gets of batch messages: nats.ErrNoResponders
// when the stream serves no direct get. A server that answers one
// message at a time is walked one request per message if walk, or else
// refused with errNotBatched.
func (b *JetStream) readDirect(ctx context.Context, nc *nats.Conn, filter string, batch int, walk bool, each func(subject string, e entryMsg) error) error {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	subject := "$JS.API.DIRECT.GET." + b.feedStream()
	req := directGet{Seq: 1, NextFor: filter, Batch: batch}
	for {
		data, err := json.Marshal(req)
		if err != nil {
			return err
		}
		if err := nc.PublishRequest(subject, inbox, data); err != nil {
			return err
		}
		next, err := b.readBatch(ctx, sub, walk, each)
		if err != nil || next == 0 {
			return err
		}
		req.Seq = next
	}
}

// directStall is how long a direct get may go unanswered before the
// stream's config is read to see whether it serves direct gets at all: a
// request for a stream that serves none is not refused, only unanswered.
const directStall = 500 * time.Millisecond

// readBatch reads one direct get's answer: the stream sequence to ask from
// next, or 0 once nothing more matches.
func (b *JetStream) readBatch(ctx context.Context, sub *nats.Subscription, walk bool, each func(string, entryMsg) error) (next uint64, err error) {
	var last uint64
	stalled := false
	for {
		wait := ctx
		if !stalled && last == 0 {
			var cancel context.CancelFunc
			wait, cancel = context.WithTimeout(ctx, directStall)
			defer cancel()
		}
		m, err := sub.NextMsgWithContext(wait)
		if err != nil && ctx.Err() == nil && !stalled && last == 0 {
			stalled = true
			if b.servesDirect(ctx) {
				continue // slow, not refused: keep waiting
			}
			return 0, nats.ErrNoResponders
		}
		if err != nil {
			return 0, err
		}
		switch status := m.Header.Get(headerStatus); status {
		case "":
		case "404": // nothing (more) on the subject
			return 0, nil
		case "204": // the end of a batch
			if last == 0 || m.Header.Get(headerNumPending) == "0" {
				return 0, nil
			}
			return last + 1, nil
		case "503":
			return 0, nats.ErrNoResponders
		default:
			return 0, fmt.Errorf("a direct get was answered %s %s", status, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get(headerSequence), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("a direct get's message has no valid %s header", headerSequence)
		}
		if err := each(m.Header.Get(headerSubject), entryMsg{m: m, seq: seq}); err != nil {
			return 0, err
		}
		last = seq
		if m.Header.Get(headerNumPending) == "" {
			// One message, not a batch: a server before 2.11.
			if !walk {
				return 0, errNotBatched
			}
			return seq + 1, nil
		}
	}
}

// servesDirect reads the stream's config: false when it serves no direct
// get, which the reads then take for granted for noDirectFor. When the
// config cannot be read either, the direct get waits on.
func (b *JetStream) servesDirect(ctx context.Context) bool {
	info, err := b.feed.Info(ctx)
	if err != nil || info.Config.AllowDirect {
		return true
	}
	b.noDirectAt.Store(time.Now().UnixNano())
	return false
}

// noDirectFor is how long reads go straight to a consumer once the stream
// was found to serve no direct get: every node's Connect turns them on
// again.
const noDirectFor = time.Minute

// direct says whether to try a direct get.
func (b *JetStream) direct() bool {
	at := b.noDirectAt.Load()
	return at == 0 || time.Since(time.Unix(0, at)) > noDirectFor
}

// readByConsumer reads every stored entry of the product, oldest first,
// through an ordered consumer of its own: for a stream that serves no
// direct get.
func (b *JetStream) readByConsumer(ctx context.Context, productID int64) ([]Entry, error) {
	cons, err := b.js.OrderedConsumer(ctx, b.feedStream(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{b.feedSubject(productID)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		// The server would drop the idle consumer by itself later.
		del, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = b.js.DeleteConsumer(del, b.feedStream(), cons.CachedInfo().Name)
		cancel()
	}()
	pending := cons.CachedInfo().NumPending
	var all []Entry
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchContext(ctx))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			pending = md.NumPending
			e, err := decodeEntry(productID, m.Headers(), m.Data(), md.Sequence.Stream)
			if err != nil {
				return nil, err
			}
			all = append(all, e)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err // out of time, not the log's end
			}
			break // the rest aged out meanwhile
		}
	}
	return all, nil
}
