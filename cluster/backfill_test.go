package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nellis-edge/gateway/internal/natstest"
)

// fillLogs stores history entries of epoch "e" (seqs 1..history) for each
// of products 1..lots, unfenced and in interleaved order, as many owners
// appending at once leave the log.
func fillLogs(t testing.TB, b *JetStream, lots, history int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for seq := 1; seq <= history; seq++ {
		for id := int64(1); id <= int64(lots); id++ {
			rec := record(id, "e", uint64(seq))
			msg := &nats.Msg{Subject: b.feedSubject(id), Header: nats.Header{}, Data: rec.Payload}
			msg.Header.Set(headerEpoch, rec.Epoch)
			msg.Header.Set(headerSeq, fmt.Sprint(rec.Seq))
			msg.Header.Set(headerSource, rec.Source)
			msg.Header.Set(headerReceived, rec.ReceivedAt.Format(time.RFC3339Nano))
			if _, err := b.js.PublishMsgAsync(msg); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-b.js.PublishAsyncComplete():
		case <-ctx.Done():
			t.Fatal("filling the logs took over a minute")
		}
	}
}

// A reader node that gets interest in thousands of lots at once reads
// every lot's whole log, in a few requests for all of them. (With a
// consumer per read, most reads were refused: the stream allows 1,000
// consumers; 1,883 of 2,000 failed, 40 returned part of the log without
// an error, 5,806 API requests.)
func TestBackfillOfManyLotsAtOnce(t *testing.T) {
	const lots, history = 2000, 16
	n := startNATS(t)
	owner, reader := n.bus("owner"), n.bus("reader")
	fillLogs(t, owner, lots, history)
	api := natstest.CountAPI(t, n.url())
	time.Sleep(50 * time.Millisecond) // the fill's last acks are not requests
	api.Take()

	var failed, short atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for id := int64(1); id <= lots; id++ {
		wg.Go(func() {
			// A plain build reads them all within a second; a -race build
			// on a busy 2-core machine took up to 15 s. (The hub gives a
			// new feed's first read 8 s, and more to its retries.)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			got, err := reader.Backfill(ctx, id, 0)
			switch {
			case err != nil:
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			case fmt.Sprint(seqsOf(got)) != fmt.Sprint(seqRange(1, history)):
				short.Add(1)
				t.Logf("product %d: read %v", id, seqsOf(got))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	time.Sleep(100 * time.Millisecond) // a consumer's delete follows its read
	calls, kinds := api.Take()
	t.Logf("%d lots × %d entries read at once in %v: %d failed (first: %v), %d incomplete; %d API requests (%.1f per lot: %s)",
		lots, history, took.Round(time.Millisecond), failed.Load(), firstErr.Load(), short.Load(), calls, float64(calls)/lots, kinds)
	if failed.Load() > 0 || short.Load() > 0 {
		t.Errorf("%d of %d backfills failed and %d were incomplete", failed.Load(), lots, short.Load())
	}
	// The first few reads are served one by one, the rest by a sweep of
	// 64 batches, once more for those that joined it under way.
	if calls > lots/4 {
		t.Errorf("%d API requests for %d lots, want a few sweeps of the log", calls, lots)
	}
}

// BenchmarkBackfillOneOfManyLots: one product's read while the log holds
// 2,000 products' entries interleaved, the cost of a node's single join
// (the server scans the log for the product's entries).
func BenchmarkBackfillOneOfManyLots(b *testing.B) {
	const lots, history = 2000, 16
	n := startNATS(b)
	owner, reader := n.bus("owner"), n.bus("reader")
	fillLogs(b, owner, lots, history)
	id := int64(0)
	for b.Loop() {
		id = id%lots + 1
		got, err := reader.Backfill(b.Context(), id, 0)
		if err != nil || len(got) != history {
			b.Fatal(err, len(got))
		}
	}
}

// setDirect turns the feed stream's direct gets on or off, as an operator
// may by hand.
func setDirect(t *testing.T, b *JetStream, on bool) {
	t.Helper()
	ctx := testCtx(t)
	s, err := b.js.Stream(ctx, b.feedStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.AllowDirect = on
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// A stream whose direct gets were turned off by hand is still read, one
// product at a time, through consumers; the next node to connect turns
// them on again, and reads are direct.
func TestBackfillOfAStreamWithoutDirectGets(t *testing.T) {
	const lots, history = 12, 5
	n := startNATS(t)
	owner := n.bus("owner")
	fillLogs(t, owner, lots, history)
	setDirect(t, owner, false)
	api := natstest.CountAPI(t, n.url())
	readAll := func(b *JetStream) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, lots+1)
		got := make([]string, lots+1)
		for id := int64(1); id <= lots; id++ {
			wg.Go(func() {
				all, err := b.Backfill(testCtx(t), id, 0)
				errs[id], got[id] = err, fmt.Sprint(seqsOf(all))
			})
		}
		wg.Wait()
		for id := int64(1); id <= lots; id++ {
			if errs[id] != nil || got[id] != fmt.Sprint(seqRange(1, history)) {
				t.Fatalf("product %d: read %s, %v; want 1..%d", id, got[id], errs[id], history)
			}
		}
	}
	readAll(owner)
	if _, kinds := api.Take(); !strings.Contains(kinds, "CONSUMER.CREATE") {
		t.Fatalf("without direct gets the log was read by %s, want consumers", kinds)
	}
	reader := n.bus("reader") // its Connect turns direct gets on
	time.Sleep(50 * time.Millisecond)
	api.Take()
	readAll(reader)
	time.Sleep(50 * time.Millisecond)
	if calls, kinds := api.Take(); strings.Contains(kinds, "CONSUMER") || calls > lots {
		t.Fatalf("after a node's Connect the log was read by %d requests (%s), want a direct get per product", calls, kinds)
	}
}

// Products asked for while a sweep of the log is under way join it where
// it is and get their whole log too, those appended to meanwhile
// included, each oldest first.
func TestBackfillJoinsASweepUnderWay(t *testing.T) {
	const lots, history = 400, 8
	old := sweepBatch
	sweepBatch = 40 // 80 batches a sweep
	t.Cleanup(func() { sweepBatch = old })
	n := startNATS(t)
	owner, reader := n.bus("owner"), n.bus("reader")
	fillLogs(t, owner, lots, history)

	var wg sync.WaitGroup
	got := make([][]Entry, lots+1)
	errs := make([]error, lots+1)
	read := func(id int64) {
		wg.Go(func() {
			got[id], errs[id] = reader.Backfill(testCtx(t), id, 0)
		})
	}
	for id := int64(1); id <= lots/2; id++ {
		read(id) // these start a sweep
	}
	// The others trickle in during it, some with a change appended
	// meanwhile: seq history+1, after every entry the sweep may have read.
	for id := int64(lots/2 + 1); id <= lots; id++ {
		if id%10 == 0 {
			last, err := owner.Last(testCtx(t), id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := owner.Append(testCtx(t), record(id, "e", history+1), last.StreamSeq); err != nil {
				t.Fatal(err)
			}
		}
		read(id)
		time.Sleep(time.Millisecond)
	}
	// Read again, each after a change appended once the sweep may have
	// passed the log's end: the second read has that change too.
	again := make(map[int64][]Entry)
	var mu sync.Mutex
	for id := int64(lots/2 + 5); id <= lots; id += 10 {
		last, err := owner.Last(testCtx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := owner.Append(testCtx(t), record(id, "e", history+1), last.StreamSeq); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			all, err := reader.Backfill(testCtx(t), id, 0)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			again[id] = all
			mu.Unlock()
		})
	}
	wg.Wait()
	for id := int64(1); id <= lots; id++ {
		want := fmt.Sprint(seqRange(1, history))
		if id > lots/2 && id%10 == 0 {
			want = fmt.Sprint(seqRange(1, history+1))
		}
		if id > lots/2 && id%10 == 5 && len(got[id]) == history+1 {
			want = fmt.Sprint(seqRange(1, history+1)) // appended before it was read
		}
		if errs[id] != nil || fmt.Sprint(seqsOf(got[id])) != want {
			t.Fatalf("product %d: read %v, %v; want %s", id, seqsOf(got[id]), errs[id], want)
		}
	}
	for id, all := range again {
		if fmt.Sprint(seqsOf(all)) != fmt.Sprint(seqRange(1, history+1)) {
			t.Fatalf("product %d read again after an append: %v, want 1..%d", id, seqsOf(all), history+1)
		}
	}
}

// oldDirectGets answers the feed stream's direct gets as a server before
// 2.11 does, one message a request whatever the batch, from msgs (stream
// sequence i+1 is msgs[i]); the stream itself is gone.
func oldDirectGets(t *testing.T, url, stream string, msgs []*nats.Msg) *atomic.Int64 {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var asked atomic.Int64
	_, err = nc.Subscribe("$JS.API.DIRECT.GET."+stream, func(m *nats.Msg) {
		asked.Add(1)
		var req directGet
		if err := json.Unmarshal(m.Data, &req); err != nil {
			t.Error(err)
			return
		}
		for seq := max(req.Seq, 1); seq <= uint64(len(msgs)); seq++ {
			stored := msgs[seq-1]
			wild := strings.HasSuffix(req.NextFor, ">") && strings.HasPrefix(stored.Subject, strings.TrimSuffix(req.NextFor, ">"))
			if stored.Subject != req.NextFor && !wild {
				continue
			}
			h := nats.Header{}
			for k, v := range stored.Header {
				h[k] = v
			}
			h.Set("Nats-Stream", stream)
			h.Set("Nats-Subject", stored.Subject)
			h.Set("Nats-Sequence", fmt.Sprint(seq))
			_ = m.RespondMsg(&nats.Msg{Header: h, Data: stored.Data})
			return
		}
		_ = m.RespondMsg(&nats.Msg{Header: nats.Header{"Status": []string{"404"}, "Description": []string{"Message Not Found"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &asked
}

// A server before 2.11 answers a batched direct get with one message: the
// log is read one message a request, a product at a time, whether a few
// products or many are asked for at once.
func TestBackfillFromAServerWithoutBatches(t *testing.T) {
	const lots, history = sweepAt + 10, 3
	n := startNATS(t)
	reader := n.bus("reader")
	var msgs []*nats.Msg
	for seq := uint64(1); seq <= history; seq++ {
		for id := int64(1); id <= lots; id++ {
			rec := record(id, "e", seq)
			m := &nats.Msg{Subject: reader.feedSubject(id), Header: nats.Header{}, Data: rec.Payload}
			m.Header.Set(headerEpoch, rec.Epoch)
			m.Header.Set(headerSeq, fmt.Sprint(rec.Seq))
			m.Header.Set(headerSource, rec.Source)
			m.Header.Set(headerReceived, rec.ReceivedAt.Format(time.RFC3339Nano))
			msgs = append(msgs, m)
		}
	}
	if err := reader.js.DeleteStream(testCtx(t), reader.feedStream()); err != nil {
		t.Fatal(err)
	}
	asked := oldDirectGets(t, n.url(), reader.feedStream(), msgs)
	one, err := reader.Backfill(testCtx(t), 7, 0)
	if err != nil || fmt.Sprint(seqsOf(one)) != fmt.Sprint(seqRange(1, history)) {
		t.Fatalf("one product: read %v, %v; want 1..%d", seqsOf(one), err, history)
	}
	if n := asked.Load(); n != history+1 {
		t.Fatalf("one product took %d requests, want %d (one a message, and the last finds none)", n, history+1)
	}
	var wg sync.WaitGroup
	got := make([][]Entry, lots+1)
	errs := make([]error, lots+1)
	for id := int64(1); id <= lots; id++ {
		wg.Go(func() { got[id], errs[id] = reader.Backfill(testCtx(t), id, 0) })
	}
	wg.Wait()
	for id := int64(1); id <= lots; id++ {
		if errs[id] != nil || fmt.Sprint(seqsOf(got[id])) != fmt.Sprint(seqRange(1, history)) {
			t.Fatalf("product %d of %d at once: read %v, %v; want 1..%d", id, lots, seqsOf(got[id]), errs[id], history)
		}
	}
}

// Last, what a new owner reads to continue a product's epoch, copes with a
// stream whose direct gets were turned off by hand as Backfill does:
// before, it waited unanswered until the caller's deadline, so TakeOver
// timed out until a node's Connect turned them on again.
func TestLastOfAStreamWithoutDirectGets(t *testing.T) {
	const lots, history = 3, 4
	n := startNATS(t)
	owner := n.bus("owner")
	fillLogs(t, owner, lots, history)
	setDirect(t, owner, false)
	for id := int64(1); id <= lots; id++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		e, err := owner.Last(ctx, id)
		cancel()
		if err != nil || e.Seq != history {
			t.Fatalf("product %d: last %+v, %v after %v; want seq %d", id, e, err, time.Since(start).Round(time.Millisecond), history)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := owner.Last(ctx, lots+1); !errors.Is(err, ErrEmpty) {
		t.Fatalf("a product with no log: %v, want ErrEmpty", err)
	}
}
