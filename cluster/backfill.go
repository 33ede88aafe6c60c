package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading the log's past (Backfill) for the node's new feeds.
//
// A consumer per read cost three API round trips through the stream
// leader, and counted against the stream's consumer limit (1,000 by
// default since nats-server 2.11): a node whose clients asked for 2,000
// lots at once saw most reads refused (TestBackfillOfManyLotsAtOnce). A
// direct get, answered by any replica without a consumer, is cheaper, but
// the stream holds the products' entries interleaved, so the server walks
// every entry between a product's oldest and newest to find its own: one
// product's read costs about a read of the whole log. So the reads are
// served one round at a time by one goroutine: a round with one or a few
// products reads each by a batched direct get of its subject; a round with
// many reads the whole log once, in batches, and hands each product its
// entries. Reads that arrive during a round wait for the next, so a
// thousand feeds joining at once cost a few sweeps of the log.

// sweepAt is the number of products one round reads by a sweep of the
// whole log rather than one by one.
const sweepAt = 8

// sweepBatch is how many entries one direct get of a sweep asks for.
const sweepBatch = 4096

// maxRound bounds one round of reads when no reader set a deadline.
const maxRound = 30 * time.Second

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

// serveReads answers Backfill's reads, in rounds of all that wait, until
// ctx ends.
func (b *JetStream) serveReads(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for {
		var round []*logRead
		select {
		case <-ctx.Done():
			return
		case r := <-b.reads:
			round = append(round, r)
		}
	gather:
		for {
			select {
			case r := <-b.reads:
				round = append(round, r)
			default:
				break gather
			}
		}
		b.readRound(ctx, round)
	}
}

// readRound reads the logs of the products of one round and answers each
// read.
func (b *JetStream) readRound(ctx context.Context, round []*logRead) {
	wanted := make(map[int64][]*logRead)
	var latest time.Time
	bounded := true
	for _, r := range round {
		if r.ctx.Err() != nil {
			continue // its Backfill returned already
		}
		wanted[r.id] = append(wanted[r.id], r)
		if dl, ok := r.ctx.Deadline(); !ok {
			bounded = false
		} else if dl.After(latest) {
			latest = dl
		}
	}
	if len(wanted) == 0 {
		return
	}
	if !bounded || time.Until(latest) > maxRound {
		latest = time.Now().Add(maxRound)
	}
	rctx, cancel := context.WithDeadline(ctx, latest)
	defer cancel()
	answer := func(id int64, res logResult) {
		for _, r := range wanted[id] {
			r.done <- res
		}
		delete(wanted, id)
	}
	nc, err := b.conn()
	if err != nil {
		for id := range wanted {
			answer(id, logResult{err: err})
		}
		return
	}
	if len(wanted) >= sweepAt && b.direct() {
		logs, err := b.sweep(rctx, nc, wanted)
		if err == nil {
			for id := range wanted {
				answer(id, logs[id])
			}
			return
		}
		// A server before 2.11 answers no batch and a stream without direct
		// gets none: each product is read on its own then.
		if !errors.Is(err, errNotBatched) && !errors.Is(err, nats.ErrNoResponders) {
			for id := range wanted {
				answer(id, logResult{err: err})
			}
			return
		}
	}
	for id := range wanted {
		all, err := b.readProduct(rctx, nc, id)
		answer(id, logResult{all: all, err: err})
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

// sweep reads the whole log once and returns the entries of the wanted
// products, each product's oldest first, or the error of a product whose
// entry could not be read.
func (b *JetStream) sweep(ctx context.Context, nc *nats.Conn, wanted map[int64][]*logRead) (map[int64]logResult, error) {
	logs := make(map[int64]logResult, len(wanted))
	prefix := b.cfg.Prefix + ".feed."
	err := b.readDirect(ctx, nc, b.feedSubjects(), sweepBatch, false, func(subject string, e entryMsg) error {
		id, err := strconv.ParseInt(strings.TrimPrefix(subject, prefix), 10, 64)
		if err != nil || wanted[id] == nil {
			return nil // not a product asked for
		}
		res := logs[id]
		if res.err == nil {
			ent, err := e.decode(id)
			res.all, res.err = append(res.all, ent), err
			logs[id] = res
		}
		return nil
	})
	return logs, err
}

// errNotBatched: the server answered a batched direct get with a single
// message, as servers before 2.11 do.
var errNotBatched = errors.New("cluster: the server answers no batched direct get")

// directGet is a direct get request (nats-server's JSApiMsgGetRequest):
// the first messages of subject NextFor from stream sequence Seq on, at
// most Batch of them. A server before 2.11 ignores Batch and answers
// with one message.
type directGet struct {
	Seq     uint64 `json:"seq"`
	NextFor string `json:"next_by_subj"`
	Batch   int    `json:"batch,omitempty"`
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
