package bidding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/users"
)

// The errorType of each refusal and outcome, as the extension knows them
// (the predecessor's names, plus the gateway's own refusals).
const (
	ErrTypeDisabled      = "BIDDING_DISABLED"
	ErrTypeInvalidAmount = "INVALID_AMOUNT"
	ErrTypeNoProduct     = "NO_PRODUCT_ID"
	ErrTypeNoCookies     = "NO_COOKIES"
	ErrTypeInFlight      = "BID_IN_FLIGHT"
	ErrTypeRateLimited   = "RATE_LIMITED"
	ErrTypeDryRun        = "DRY_RUN"
	ErrTypeShuttingDown  = "SHUTTING_DOWN"
	// ErrTypeNoOwner: in a cluster, no gateway owns the lot right now
	// (a handover is under way); retryable.
	ErrTypeNoOwner = "NO_OWNER"
	// ErrTypeNotRecorded: the bid could not be recorded before it would
	// have left, so it was not sent; retryable.
	ErrTypeNotRecorded = "BID_NOT_RECORDED"
	// ErrTypeNoAnswer: the gateway that owns the lot took the bid and did
	// not answer in time; it may have been placed, so not retryable.
	ErrTypeNoAnswer = "NO_ANSWER"
)

// The refusals of a bid this node may not send.
var (
	refusalNoOwner = refusal(ErrTypeNoOwner, "No gateway handles this lot right now (a handover is under way): bid again in a moment.", true)
	// refusalRecordChanged is the compare-and-set that fences a stalled
	// owner refusing a bid: the lot's bid record changed since this node
	// read it. On a new owner that is most often the old owner's late
	// answer to an earlier bid, not a handover, and the next bid reads
	// the record again and goes out; the type stays NO_OWNER, which the
	// extension already retries.
	refusalRecordChanged = refusal(ErrTypeNoOwner, "This bid was not sent: another gateway changed your bid record for this lot just before it (an earlier bid's answer arriving late, or a handover). Check the lot's price, then bid again.", true)
	refusalNotRecorded   = refusal(ErrTypeNotRecorded, "The bid could not be recorded before sending, so it was not sent: bid again in a moment.", true)
	refusalNoAnswer      = refusal(ErrTypeNoAnswer, "The gateway that handles this lot did not answer in time; the bid may have been placed: check the auction before bidding again.", false)
)

// errorTypes maps an outcome to the bidResult's errorType.
var errorTypes = map[nellis.BidOutcome]string{
	nellis.BidOutbid:        "OUTBID",
	nellis.BidTooLow:        "BID_TOO_LOW",
	nellis.BidDuplicate:     "DUPLICATE_BID_AMOUNT",
	nellis.BidEnded:         "AUCTION_ENDED",
	nellis.BidAuthRequired:  "AUTHENTICATION_ERROR",
	nellis.BidRejected:      "BID_REJECTED",
	nellis.BidUpstreamError: "SERVER_ERROR",
}

// PlaceBid places a bid a user asked for (placeBid over the socket, or the
// REST call); it is the relay's Bidder (wsrelay.Bidder). In a cluster a
// bid on a lot another node owns goes to that node (Options.Forwarder),
// whose engine places it (PlaceOwnBid). Refusals and Nellis's answers
// are all in the BidResult; the error is always nil. An outbid is not a
// success: Nellis took the bid, but the user is not winning, and the
// extension must say so. A bid on a lot the user does not monitor
// (b.Unmonitored) holds the same rules; see looseStateLocked.
func (e *Engine) PlaceBid(ctx context.Context, b users.Bid) (users.BidResult, error) {
	if b.ProductID > 0 && !e.owns(b.ProductID) && !e.config().Off {
		if e.paused() {
			return refusalClusterLost, nil // no owner can be reached: say why at once
		}
		if e.cluster().Forwarder == nil {
			return refusalNoOwner, nil
		}
		res, err := e.cluster().Forwarder.Forward(ctx, b)
		switch {
		case errors.Is(err, ErrNoOwner):
			return refusalNoOwner, nil
		case err != nil:
			e.log().Warn("no answer from the lot's owner to a bid handed to it", zap.String("user", b.User),
				zap.Int64("product_id", b.ProductID), zap.Error(err))
			return refusalNoAnswer, nil
		}
		return res, nil
	}
	return e.PlaceOwnBid(ctx, b)
}

// PlaceOwnBid places a bid on a lot this node owns, never handing it on:
// what a node answers to a bid another node forwarded. A lot it does not
// own is refused as retryable (NO_OWNER).
func (e *Engine) PlaceOwnBid(ctx context.Context, b users.Bid) (users.BidResult, error) {
	cfg := e.config()
	if cfg.Off {
		return refusal(ErrTypeDisabled, "Bidding is turned off on this gateway.", false), nil
	}
	if b.Amount != math.Trunc(b.Amount) || b.Amount < 1 || b.Amount > nellis.MaxBidAmount {
		return refusal(ErrTypeInvalidAmount, fmt.Sprintf("Bids are whole dollars from 1 to %d; %v is not one.", nellis.MaxBidAmount, b.Amount), false), nil
	}
	if b.ProductID <= 0 {
		return refusal(ErrTypeNoProduct, fmt.Sprintf("Auction %s has no Nellis product id to bid on.", b.AuctionID), false), nil
	}
	if strings.TrimSpace(b.Cookies) == "" {
		return refusal(ErrTypeNoCookies, "No Nellis cookies are synced for this user: open nellisauction.com while signed in so the extension syncs them, then bid again.", false), nil
	}
	if !e.owns(b.ProductID) {
		return refusalNoOwner, nil
	}
	amount := int(b.Amount)
	// The lot, not the auction id, is what the rules hold for: a second id
	// of the same lot shares its bid in flight and its rate.
	k := stateKey{b.User, b.ProductID}
	if err := e.ensureLoaded(ctx, k, nil); err != nil {
		e.log().Warn("reading a lot's bid record failed", zap.String("user", b.User),
			zap.Int64("product_id", b.ProductID), zap.Error(err))
		return refusalNotRecorded, nil
	}
	now := e.clock.Now()

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return refusal(ErrTypeShuttingDown, "The gateway is shutting down; bid again in a moment.", true), nil
	}
	var st *bidState
	if b.Unmonitored {
		st = e.looseStateLocked(k, now)
	} else {
		st = e.stateLocked(k, b.AuctionID)
	}
	if e.cluster().Ledger != nil && !st.loaded && !st.inFlight {
		e.mu.Unlock() // unloaded since: this node lost the lot, or its record moved on
		if !e.owns(b.ProductID) {
			return refusalNoOwner, nil
		}
		return refusalRecordChanged, nil
	}
	if st.inFlight {
		e.mu.Unlock()
		return refusal(ErrTypeInFlight, "A bid on this auction is already on its way; wait for its answer.", true), nil
	}
	if ok, retryAt := st.rate.allow(now, cfg.BidsPerMinute); !ok {
		e.mu.Unlock()
		wait := retryAt.Sub(now).Round(1e9)
		return refusal(ErrTypeRateLimited, fmt.Sprintf("At most %d bids a minute on one auction; try again in %s.", cfg.BidsPerMinute, wait), true), nil
	}
	st.rate.record(now)
	st.tried[amount] = struct{}{}
	if cfg.DryRun {
		e.recordDryRunLocked(k, st, amount, StrategyManual, now)
		e.mu.Unlock()
		e.flush([]stateKey{k})
		data, _ := json.Marshal(map[string]any{"dryRun": true, "productId": b.ProductID, "bid": amount})
		return users.BidResult{
			Error:     fmt.Sprintf("Dry run: would have bid $%d on product %d; nothing was sent.", amount, b.ProductID),
			ErrorType: ErrTypeDryRun, Data: data,
		}, nil
	}
	st.inFlight = true
	e.wg.Add(1)
	e.active.Add(1)
	e.mu.Unlock()

	res, err := e.send(ctx, launch{key: k, amount: amount, cookies: b.Cookies, strategy: StrategyManual})
	switch {
	case errors.Is(err, users.ErrBidConflict):
		return refusalRecordChanged, nil
	case errors.Is(err, ErrNoOwner):
		return refusalNoOwner, nil
	case err != nil:
		return refusalNotRecorded, nil
	}
	return relayResult(res), nil
}

// looseStateLocked returns k's state for a bid on a lot the user does not
// monitor, creating it, without linking the auction id: nothing is
// reported under an id the user does not monitor, and no Forget will come
// for it. The state still holds the lot's rules (one bid in flight, the
// rate, whether the user's bid leads, which an auto-bid started later on
// the lot sees), so it lives until they no longer need it: it is dropped at
// a later such bid once its minute has passed, unless an auction id of the
// user's took it over meanwhile. The caller holds mu.
func (e *Engine) looseStateLocked(k stateKey, now time.Time) *bidState {
	for lk := range e.loose {
		st := e.states[lk]
		switch {
		case lk == k: // the lot bid on now: its record was just read
		case st == nil || len(st.ids) > 0: // forgotten, or monitored now
			delete(e.loose, lk)
		case !st.inFlight && st.rate.idle(now):
			delete(e.states, lk)
			delete(e.loose, lk)
		}
	}
	st := e.stateLocked(k)
	if len(st.ids) == 0 {
		e.loose[k] = struct{}{}
	}
	return st
}

// BidTimeout is the configured bid_timeout: the longest one bid waits for
// Nellis's answer. It implements wsrelay.Bidder, whose wait outlasts it.
func (e *Engine) BidTimeout() time.Duration { return time.Duration(e.config().BidTimeout) }

func refusal(errorType, msg string, retryable bool) users.BidResult {
	return users.BidResult{Error: msg, ErrorType: errorType, Retryable: retryable}
}

// relayResult is Nellis's answer as the bidResult message carries it.
func relayResult(res nellis.BidResult) users.BidResult {
	out := users.BidResult{Success: res.Outcome == nellis.BidAccepted, Data: res.Body, Retryable: res.Retryable}
	if !out.Success {
		out.Error = res.Message
		out.ErrorType = errorTypes[res.Outcome]
	}
	return out
}
