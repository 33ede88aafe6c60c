package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The headers a record's fields travel in; the payload is the body.
const (
	headerEpoch    = "Nellis-Epoch"
	headerSeq      = "Nellis-Seq"
	headerSource   = "Nellis-Source"
	headerReceived = "Nellis-Received"
)

// Append stores rec, fenced by the product's last stored StreamSeq: the
// stream leader refuses it (ErrDeposed) once anyone else appended.
func (b *JetStream) Append(ctx context.Context, rec Record, expect uint64) (uint64, error) {
	if err := b.usable(); err != nil {
		return 0, err
	}
	msg := &nats.Msg{Subject: b.feedSubject(rec.ProductID), Header: nats.Header{}, Data: rec.Payload}
	msg.Header.Set(headerEpoch, rec.Epoch)
	msg.Header.Set(headerSeq, strconv.FormatUint(rec.Seq, 10))
	msg.Header.Set(headerSource, rec.Source)
	msg.Header.Set(headerReceived, rec.ReceivedAt.UTC().Format(time.RFC3339Nano))
	ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(expect))
	if isWrongLastSeq(err) {
		return 0, fmt.Errorf("%w (product %d, expected the log at %d)", ErrDeposed, rec.ProductID, expect)
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: appending to product %d: %w", rec.ProductID, err)
	}
	b.answered()
	return ack.Sequence, nil
}

// isWrongLastSeq reports the stream's refusal of a fenced write: code
// 10071, or 10164 from a replicated stream.
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// Last returns the product's newest stored entry, or ErrEmpty.
func (b *JetStream) Last(ctx context.Context, productID int64) (Entry, error) {
	if err := b.usable(); err != nil {
		return Entry{}, err
	}
	raw, err := b.lastMsg(ctx, b.feedSubject(productID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Entry{}, ErrEmpty
	}
	if err != nil {
		return Entry{}, fmt.Errorf("cluster: reading product %d's last change: %w", productID, err)
	}
	return decodeEntry(productID, raw.Header, raw.Data, raw.Sequence)
}

// lastMsg reads the newest message on subject: by a direct get, unless
// the stream was found to serve none (turned off by hand, see
// servesDirect), then from the stream's leader, as Backfill falls back to
// a consumer. The stream handle of Connect believes in direct gets for
// good, so that read takes a fresh handle, which knows.
func (b *JetStream) lastMsg(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	if b.direct() {
		wait, cancel := context.WithTimeout(ctx, directStall)
		raw, err := b.feed.GetLastMsgForSubject(wait, subject)
		cancel()
		switch {
		case err == nil || errors.Is(err, jetstream.ErrMsgNotFound) || ctx.Err() != nil:
			return raw, err
		case !errors.Is(err, nats.ErrNoResponders) && wait.Err() == nil:
			return raw, err // refused for another reason
		case b.servesDirect(ctx):
			// Slow, not refused: wait on, as long as the caller does.
			return b.feed.GetLastMsgForSubject(ctx, subject)
		}
	}
	s, err := b.js.Stream(ctx, b.feedStream())
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(ctx, subject)
}

// Subscribe delivers every product's entries appended from now on to
// handle, from one ordered consumer: in log order, on one goroutine,
// resumed where it stopped after a reconnect.
func (b *JetStream) Subscribe(ctx context.Context, handle func(Entry)) (Subscription, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	cons, err := b.js.OrderedConsumer(ctx, b.feedStream(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{b.feedSubjects()},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: subscribing to the log: %w", err)
	}
	prefix := b.cfg.Prefix + ".feed."
	cc, err := cons.Consume(func(m jetstream.Msg) {
		id, err := strconv.ParseInt(strings.TrimPrefix(m.Subject(), prefix), 10, 64)
		if err != nil {
			return // not a product's subject: nobody here wrote it
		}
		md, err := m.Metadata()
		if err != nil {
			return
		}
		e, err := decodeEntry(id, m.Headers(), m.Data(), md.Sequence.Stream)
		if err != nil {
			return
		}
		handle(e)
	},
		// A consumer the server lost (a restart) is noticed by two
		// missed heartbeats and made again: with the default 30 s pulls
		// a node would hear nothing for most of that.
		jetstream.PullExpiry(3*pullHeartbeat(b.cfg)),
		jetstream.PullHeartbeat(pullHeartbeat(b.cfg)),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: subscribing to the log: %w", err)
	}
	return b.track(func() {
		cc.Stop()
		<-cc.Closed()
	})
}

// track makes a running consumer or watch a Subscription that Close
// stops too; end stops it and waits until its handler has returned.
func (b *JetStream) track(end func()) (Subscription, error) {
	s := &subscription{bus: b, end: end}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.halt()
		return nil, ErrClosed
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s, nil
}

// pullHeartbeat is the log consumer's heartbeat: a renewal period, within
// the 0.5 s to 30 s the server accepts.
func pullHeartbeat(cfg Config) time.Duration {
	return min(max(cfg.renewEvery(), 500*time.Millisecond), 30*time.Second)
}

// subscription is one Subscribe's consumer, or one WatchOwners' watch.
type subscription struct {
	bus  *JetStream
	end  func()
	once sync.Once
}

// Stop ends the consumer and waits until its handler has returned.
func (s *subscription) Stop() {
	s.bus.mu.Lock()
	delete(s.bus.subs, s)
	s.bus.mu.Unlock()
	s.halt()
}

func (s *subscription) halt() {
	s.once.Do(s.end)
}

// decodeEntry reads a stored message back into an entry.
func decodeEntry(productID int64, h nats.Header, data []byte, streamSeq uint64) (Entry, error) {
	seq, err := strconv.ParseUint(h.Get(headerSeq), 10, 64)
	if err != nil {
		return Entry{}, fmt.Errorf("cluster: product %d: entry %d has no valid %s header", productID, streamSeq, headerSeq)
	}
	received, err := time.Parse(time.RFC3339Nano, h.Get(headerReceived))
	if err != nil {
		return Entry{}, fmt.Errorf("cluster: product %d: entry %d has no valid %s header", productID, streamSeq, headerReceived)
	}
	return Entry{
		Record: Record{
			ProductID:  productID,
			Epoch:      h.Get(headerEpoch),
			Seq:        seq,
			Source:     h.Get(headerSource),
			ReceivedAt: received,
			Payload:    data,
		},
		StreamSeq: streamSeq,
	}, nil
}
