package bidding

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/users"
)

// Owner says whether this node decides a product's bids. In a cluster
// only the node holding the product's lease bids on it (the module
// answers from the hub's leases); a nil Owner is a single node, which
// owns everything.
type Owner interface {
	Owns(productID int64) bool
}

// Forwarder hands a manual bid on a product this node does not own to
// the node that does (a NATS request in a cluster) and returns its
// answer. An error means the bid did not reach an owner, so it was not
// sent.
type Forwarder interface {
	Forward(ctx context.Context, b users.Bid) (users.BidResult, error)
}

// ErrNoOwner is a Forwarder's error when no node owns the product now
// (users.ErrNoOwner).
var ErrNoOwner = users.ErrNoOwner

// ownerRecheck is how often a worker of a product this node does not own
// asks again whether it does: an ownership handed over is acted on within
// it, on top of the lease the old owner's had to run out.
const ownerRecheck = 250 * time.Millisecond

// resultUnknown is the Result of a bid whose answer was never recorded:
// the node that sent it stopped first. Its amount counts as tried.
const resultUnknown = "unknown"

// msgUnknownIntent and msgAwaitFresh are the status while the engine
// waits for a fresh snapshot after finding such a bid.
const (
	msgUnknownIntent = "A bid of $%d was sent by a gateway that stopped before Nellis answered: waiting for a fresh price before bidding again."
	msgAwaitFresh    = "A bid was sent by a gateway that stopped before Nellis answered: waiting for a fresh price before bidding again."
)

// ledgerTimeout bounds one read or write of a lot's record; ledgerRetry
// is when a lot whose record could not be read is tried again.
const (
	ledgerTimeout = 5 * time.Second
	ledgerRetry   = time.Second
)

// owns reports whether this node decides productID's bids.
func (e *Engine) owns(productID int64) bool {
	return e.cluster().Owner == nil || e.cluster().Owner.Owns(productID)
}

// ensureLoaded reads the lot's persisted record into its state once,
// before the engine first bids on the lot, and again after the node lost
// the lot or a commit found it changed. c is the change being looked at
// (nil for a manual bid): a snapshot that waits for an unanswered bid
// must be newer than it. The state is made if there is none; one no
// auction id takes is dropped as a loose state is (looseStateLocked).
func (e *Engine) ensureLoaded(ctx context.Context, k stateKey, c *hub.Change) error {
	if e.cluster().Ledger == nil {
		return nil
	}
	e.mu.Lock()
	st := e.states[k]
	need := st == nil || (!st.loaded && !st.inFlight)
	e.mu.Unlock()
	if !need {
		return nil
	}
	rec, rev, err := e.cluster().Ledger.LoadBids(ctx, k.user, k.productID)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	st = e.states[k]
	if st == nil {
		st = newBidState(k.productID)
		e.states[k] = st
		e.loose[k] = struct{}{}
	}
	if st.loaded || st.inFlight {
		return nil // loaded meanwhile by another caller
	}
	st.install(rec, rev)
	if rec.Intent != nil {
		after := c
		if v := e.views[k.productID]; v != nil && v.change != nil && (after == nil || after.Epoch != v.change.Epoch || v.change.Seq > after.Seq) {
			after = v.change
		}
		st.awaitFresh = true
		st.awaitEpoch, st.awaitSeq = "", 0
		if after != nil {
			st.awaitEpoch, st.awaitSeq = after.Epoch, after.Seq
		}
		e.log().Warn("found a bid sent without a recorded answer: its amount counts as tried",
			logFields(k, rec.Intent.Amount, rec.Intent.Strategy)...)
	}
	return nil
}

// install replaces what the state knows of the lot's bids by the
// persisted record: every amount sent by any node is in it, since each
// is committed before it leaves. An unanswered intent counts as tried and
// goes into the history with an unknown result.
func (st *bidState) install(rec users.LotBids, rev uint64) {
	st.tried = make(map[int]struct{}, len(rec.Tried))
	for _, a := range rec.Tried {
		st.tried[a] = struct{}{}
	}
	st.rate.sent = slices.Clone(rec.Rate)
	st.history = history{}
	for _, b := range rec.Bids {
		st.history.add(b)
		// The newest answer says whether the user leads: a new owner,
		// whose feed's changes (live ones, or the log's) carry no user
		// state, would otherwise take the user's own leading bid for
		// someone else's and raise it. A price above it is someone
		// else's bid (observeChange).
		switch nellis.BidOutcome(b.Result) {
		case nellis.BidAccepted:
			st.winning, st.winMax = true, b.Amount
		case nellis.BidOutbid:
			st.winning = false
		}
	}
	if in := rec.Intent; in != nil {
		st.tried[in.Amount] = struct{}{}
		st.history.add(Record{At: in.At, Amount: in.Amount, Strategy: in.Strategy, Result: resultUnknown,
			Message: "Sent by a gateway that stopped before Nellis answered; counted as tried."})
		st.setStatus(StatusBidding, fmt.Sprintf(msgUnknownIntent, in.Amount))
	}
	st.revision = rev
	st.loaded = true
	st.version++
}

// lotBids is the state as persisted, with intent as the bid being sent.
func (st *bidState) lotBids(intent *users.BidIntent) users.LotBids {
	tried := make([]int, 0, len(st.tried))
	for a := range st.tried {
		tried = append(tried, a)
	}
	slices.Sort(tried)
	return users.LotBids{Tried: tried, Rate: slices.Clone(st.rate.sent), Bids: st.history.list(), Intent: intent}
}

// closesAtLocked is the lot's close as the engine knows it now (zero when
// unknown), recorded with its bids so that the records of lots long
// closed can be swept (Config.BidRetention).
func (e *Engine) closesAtLocked(productID int64) time.Time {
	if v := e.views[productID]; v != nil {
		return v.closeTime()
	}
	return time.Time{}
}

// unload makes the engine read the lot's records again before its next
// bid on productID: this node lost the lot, and whoever owned it since
// may have bid.
func (e *Engine) unloadLocked(productID int64) {
	for k, st := range e.states {
		if k.productID == productID && !st.inFlight {
			st.loaded = false
		}
	}
}

// commitIntent records l as being sent, by compare-and-set on the
// revision the engine last read or wrote: a node that lost the lot
// meanwhile (a stalled owner) finds the record moved on and does not
// send. In a cluster (a Node name set) any failure to record keeps the
// bid from leaving; a single node, the record's only writer, logs it and
// bids anyway.
func (e *Engine) commitIntent(ctx context.Context, l launch, at time.Time) error {
	if e.cluster().Ledger == nil {
		return nil
	}
	e.mu.Lock()
	st := e.states[l.key]
	if st == nil {
		e.mu.Unlock()
		return errors.New("bidding: the lot's state was forgotten")
	}
	intent := &users.BidIntent{Amount: l.amount, Strategy: l.strategy, At: at, Node: e.cluster().Node}
	rec, rev := st.lotBids(intent), st.revision
	rec.ClosesAt = e.closesAtLocked(l.key.productID)
	e.mu.Unlock()
	next, err := e.cluster().Ledger.CommitBids(ctx, l.key.user, l.key.productID, rec, rev)
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case err == nil:
		if st := e.states[l.key]; st != nil {
			st.revision = next
		}
		return nil
	case errors.Is(err, users.ErrBidConflict):
		e.hooksNow().intentConflict(l.strategy)
		if st := e.states[l.key]; st != nil {
			st.loaded = false // read what the other node wrote before bidding again
		}
		return err
	case e.cluster().Node == "":
		e.log().Warn("recording a bid before sending it failed; sending it anyway (single node)",
			append(logFields(l.key, l.amount, l.strategy), zap.Error(err))...)
		return nil
	}
	return err
}

// commitAnswer records l's answer (the state holds it in its history by
// now) and clears the intent. The record moved on meanwhile (another node
// took the lot over), the answer is merged into what it holds.
func (e *Engine) commitAnswer(ctx context.Context, l launch, sent time.Time, res nellis.BidResult) {
	if e.cluster().Ledger == nil {
		return
	}
	e.mu.Lock()
	st := e.states[l.key]
	if st == nil {
		e.mu.Unlock()
		return
	}
	rec, rev := st.lotBids(nil), st.revision
	closesAt := e.closesAtLocked(l.key.productID)
	rec.ClosesAt = closesAt
	e.mu.Unlock()
	answer := Record{At: sent, Amount: l.amount, Strategy: l.strategy, Result: string(res.Outcome), Message: res.Message}
	for range 3 {
		next, err := e.cluster().Ledger.CommitBids(ctx, l.key.user, l.key.productID, rec, rev)
		if err == nil {
			e.mu.Lock()
			if st := e.states[l.key]; st != nil && st.revision == rev {
				st.revision = next
			}
			e.mu.Unlock()
			return
		}
		if !errors.Is(err, users.ErrBidConflict) {
			e.log().Warn("recording a bid's answer failed", append(logFields(l.key, l.amount, l.strategy), zap.Error(err))...)
			return
		}
		e.mu.Lock()
		if st := e.states[l.key]; st != nil {
			st.loaded = false
		}
		e.mu.Unlock()
		var theirs users.LotBids
		if theirs, rev, err = e.cluster().Ledger.LoadBids(ctx, l.key.user, l.key.productID); err != nil {
			e.log().Warn("recording a bid's answer failed", append(logFields(l.key, l.amount, l.strategy), zap.Error(err))...)
			return
		}
		rec = mergeAnswer(theirs, answer, e.cluster().Node)
		if closesAt.After(rec.ClosesAt) {
			rec.ClosesAt = closesAt
		}
	}
}

// mergeAnswer adds an answer to a record another node wrote since: the
// amount stays tried, the answer joins the history (in place of the
// unknown result the other node may have recorded) and the intent, if it
// is still this node's bid, is cleared.
func mergeAnswer(rec users.LotBids, answer Record, node string) users.LotBids {
	rec = rec.Clone()
	if !slices.Contains(rec.Tried, answer.Amount) {
		rec.Tried = append(rec.Tried, answer.Amount)
		slices.Sort(rec.Tried)
	}
	if in := rec.Intent; in != nil && in.Node == node && in.Amount == answer.Amount && in.At.Equal(answer.At) {
		rec.Intent = nil
	}
	replaced := false
	for i, b := range rec.Bids {
		if b.Result == resultUnknown && b.Amount == answer.Amount && b.At.Equal(answer.At) {
			rec.Bids[i], replaced = answer, true
		}
	}
	if !replaced {
		rec.Bids = append(rec.Bids, answer)
		slices.SortStableFunc(rec.Bids, func(a, b Record) int { return a.At.Compare(b.At) })
		if n := len(rec.Bids); n > HistorySize {
			rec.Bids = rec.Bids[n-HistorySize:]
		}
	}
	return rec
}

// awaitsFresh clears the wait for a fresh snapshot once one fetched with
// the user's cookies arrives after the unanswered bid was found.
func (st *bidState) observeFresh(w Watcher, c *hub.Change) {
	if !st.awaitFresh || c.Source == hub.SourceSSE || c.User == nil || w.StateKey == "" || c.User.Owner != w.StateKey {
		return
	}
	if c.Epoch == st.awaitEpoch && c.Seq <= st.awaitSeq {
		return
	}
	st.awaitFresh = false
	st.version++
}
