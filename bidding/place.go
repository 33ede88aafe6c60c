package bidding

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/users"
)

// serverErrorPause is the least wait before an automatic bid follows a
// server error.
const serverErrorPause = time.Second

// launch is one bid decided and marked in flight.
type launch struct {
	key      stateKey
	amount   int
	cookies  string
	strategy string
}

// send places l with Nellis and applies the answer. The caller has done
// e.wg.Add(1) and e.active.Add(1) for it; send undoes both. With a Ledger
// the bid is recorded before it leaves and its answer after; a bid that
// could not be recorded, or whose lot this node no longer owns, is not
// sent: the error says why.
func (e *Engine) send(ctx context.Context, l launch) (nellis.BidResult, error) {
	defer e.wg.Done()
	defer e.active.Add(-1)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(e.config().BidTimeout))
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel) // Close aborts every bid
	defer stop()

	sent := e.clock.Now()
	if err := e.commitIntent(ctx, l, sent); err != nil {
		e.abandon(l, err)
		return nellis.BidResult{}, err
	}
	if !e.owns(l.key.productID) {
		// Lost between the decision and now: the intent stands, so the
		// next owner counts the amount as tried without it being sent.
		e.abandon(l, ErrNoOwner)
		return nellis.BidResult{}, ErrNoOwner
	}
	start := time.Now()
	res, err := e.placer.PlaceBid(ctx, l.key.productID, l.amount, l.cookies)
	took := time.Since(start)
	received := e.clock.Now()
	if err != nil {
		// Not sent: the input was refused before any request.
		res = nellis.BidResult{Outcome: nellis.BidRejected, Message: err.Error()}
	} else {
		e.hooksNow().bidLatency(l.strategy, took)
	}
	e.applyResult(l, res, sent, received)
	// The answer is recorded even when the caller gave up waiting.
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerTimeout)
	e.commitAnswer(actx, l, sent, res)
	acancel()
	return res, nil
}

// abandon undoes l's being in flight when it was not sent; the lot's
// record is read again before the next bid there.
func (e *Engine) abandon(l launch, why error) {
	e.mu.Lock()
	if st := e.states[l.key]; st != nil {
		st.inFlight = false
		st.loaded = false
		msg := "Not sent: the bid could not be recorded first; trying again shortly."
		switch {
		case errors.Is(why, users.ErrBidConflict):
			msg = "Not sent: another gateway had just changed this lot's bid record; reading it again before the next bid."
		case errors.Is(why, ErrNoOwner):
			msg = "Not sent: another gateway handles this lot now."
		}
		st.setStatus(StatusBidding, msg)
	}
	e.mu.Unlock()
	e.log().Warn("bid not sent", append(logFields(l.key, l.amount, l.strategy), zap.Error(why))...)
	e.flush([]stateKey{l.key})
	e.poke(l.key.productID)
}

// applyResult records a bid's answer: history, winning, what it says of
// the lot and of Nellis's clock, a refused login. Then the product's
// worker looks again, so an outbid is answered at once.
func (e *Engine) applyResult(l launch, res nellis.BidResult, sent, received time.Time) {
	e.server.ObserveDate(res.ServerDate, sent, received)

	e.mu.Lock()
	switch res.Outcome {
	case nellis.BidAccepted, nellis.BidOutbid:
		delete(e.authFailed, l.key.user)
	case nellis.BidAuthRequired:
		e.authFailed[l.key.user] = cookieHash(l.cookies)
	}
	// A state forgotten while its bid was in flight (the user stopped
	// monitoring the lot) stays forgotten: the answer is logged, not kept.
	if st := e.states[l.key]; st != nil {
		st.recordAnswer(l, res, sent, received)
	}
	var extendedAt time.Time
	if v := e.views[l.key.productID]; v != nil {
		if d := res.Data; res.Outcome.Placed() {
			if d.CurrentAmount >= v.resultPrice {
				v.resultPrice, v.resultNext = d.CurrentAmount, d.MinimumNextBid
			}
			if !d.ProjectNewCloseTime.IsZero() {
				v.resultClose = d.ProjectNewCloseTime
				if d.ProjectExtended {
					// A soft-close extension sets the close to Nellis's
					// "now" plus the interval: an exact reading of its
					// clock while the bid was in flight.
					extendedAt = d.ProjectNewCloseTime.Add(-v.extension())
				}
			}
		}
	}
	e.mu.Unlock()

	if !extendedAt.IsZero() {
		e.server.ObserveInstant(extendedAt, sent, received)
	}
	e.hooksNow().bidResult(l.strategy, string(res.Outcome))
	fields := append(logFields(l.key, l.amount, l.strategy),
		zap.String("result", string(res.Outcome)), zap.Int("status", res.Status), zap.String("message", res.Message))
	if res.Outcome == nellis.BidAuthRequired || res.Outcome == nellis.BidUpstreamError || res.Outcome == nellis.BidRejected {
		e.log().Warn("bid not placed", fields...)
	} else {
		e.log().Info("bid answered", fields...)
	}
	e.flush([]stateKey{l.key})
	if res.Outcome == nellis.BidAuthRequired {
		e.pokeUser(l.key.user)
	} else {
		e.poke(l.key.productID)
	}
}

// recordAnswer applies a bid's answer to the user's state of the lot.
func (st *bidState) recordAnswer(l launch, res nellis.BidResult, sent, received time.Time) {
	st.inFlight = false
	st.history.add(Record{At: sent, Amount: l.amount, Strategy: l.strategy, Result: string(res.Outcome), Message: res.Message})
	st.version++
	switch res.Outcome {
	case nellis.BidAccepted:
		if !st.winning || l.amount > st.winMax {
			st.winMax = l.amount
		}
		st.winning = true
	case nellis.BidOutbid:
		st.winning = false
	case nellis.BidEnded:
		st.endedAnswer = true
	case nellis.BidAuthRequired:
		// Refused before it was looked at: with fresh cookies the same
		// amount is a first bid, not a repeat.
		delete(st.tried, l.amount)
	case nellis.BidUpstreamError:
		if res.Status != 0 {
			// Nellis answered with an error, so it did not take the bid:
			// the amount may go again after a pause. (Had it taken it
			// after all, the repeat is refused as a duplicate and costs
			// nothing.) Without any answer the bid may stand, and the
			// amount is never sent again.
			delete(st.tried, l.amount)
			st.retryAt = received.Add(max(res.RetryAfter, serverErrorPause))
		}
	}
}

// pokeUser makes every product the user auto-bids on look again: refused
// cookies stop all of them.
func (e *Engine) pokeUser(user string) {
	e.mu.Lock()
	products := make(map[int64]struct{})
	for k := range e.states {
		if k.user == user {
			products[k.productID] = struct{}{}
		}
	}
	var workers []*worker
	for id := range products {
		if w := e.workers[id]; w != nil {
			workers = append(workers, w)
		}
	}
	e.mu.Unlock()
	for _, w := range workers {
		w.poke()
	}
}

// logFields describe a bid; never the cookies.
func logFields(k stateKey, amount int, strategy string) []zap.Field {
	return []zap.Field{
		zap.String("user", k.user), zap.Int64("product_id", k.productID),
		zap.Int("amount", amount), zap.String("strategy", strategy),
	}
}
