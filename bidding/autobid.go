package bidding

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/hub"
)

// Messages the user sees in an auction's state.
const (
	msgNoCookies = "No Nellis cookies are synced for this user: open nellisauction.com while signed in so the extension syncs them. Auto-bid is stopped."
	msgAuth      = "Nellis refused the synced cookies (authentication required): sign in on nellisauction.com again so the extension syncs fresh ones. Auto-bid is stopped."
	msgOff       = "Bidding is off on this gateway: auto-bid is paused."
)

// evaluate is one decision round for w's product, with the feed's newest
// change if one arrived. It returns when the product must be looked at
// again without news (zero: only on news). A node that does not own the
// product (Options.Owner) decides nothing and asks again shortly; one
// that lost it reads the lot's records again before its next bid there.
func (e *Engine) evaluate(w *worker, c *hub.Change) time.Time {
	productID := w.productID
	if !e.owns(productID) {
		e.mu.Lock()
		if w.owned {
			e.unloadLocked(productID)
		}
		if v := e.views[productID]; c != nil && e.workers[productID] == w {
			if v == nil {
				v = &view{}
				e.views[productID] = v
			}
			if v.newer(c) {
				v.change = c // the picture this node starts from once it owns the lot
			}
		}
		e.mu.Unlock()
		w.owned = false
		e.flush(e.showPause(productID, e.paused()))
		return e.clock.Now().Add(ownerRecheck)
	}
	w.owned = true
	watchers := e.dir.AutoBidders(productID)
	if e.cluster().Ledger != nil {
		ctx, cancel := context.WithTimeout(e.rightsContext(), ledgerTimeout)
		for _, lw := range lotWatchers(watchers) {
			// Ended by Recheck or Close: the worker looks again at once.
			if err := e.ensureLoaded(ctx, stateKey{lw.User, productID}, c); err != nil && !errors.Is(err, context.Canceled) {
				e.log().Warn("reading a lot's bid record failed", zap.String("user", lw.User),
					zap.Int64("product_id", productID), zap.Error(err))
			}
		}
		cancel()
	}
	now := e.clock.Now()
	off := e.server.Offset(now)
	cfg := e.config()

	launches, touched, wake := e.decideAll(productID, c, watchers, now, off, cfg)
	for _, l := range launches {
		go func() {
			defer e.recoverPanic("bid")
			_, _ = e.send(e.ctx, l)
		}()
	}
	e.flush(touched)
	return wake
}

// decideAll runs the rules for every watcher under e.mu: the bids to
// launch, the states to report and when to look again.
func (e *Engine) decideAll(productID int64, c *hub.Change, watchers []Watcher, now time.Time, off Offset, cfg *Config) (launches []launch, touched []stateKey, wake time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.views[productID]
	if e.closed || e.workers[productID] == nil {
		return nil, nil, time.Time{}
	}
	if v == nil {
		v = &view{}
		e.views[productID] = v
	}
	fresh := c != nil && v.newer(c)
	if fresh {
		v.change = c
	}
	for _, lw := range lotWatchers(watchers) {
		w := lw.Watcher
		k := stateKey{w.User, productID}
		st := e.stateLocked(k, lw.ids...)
		st.pause = pauseState{} // owned: the rules say the status
		delete(e.pausedLots, productID)
		if fresh {
			observeChange(st, w, c)
			st.observeFresh(w, c)
		}
		l, at := e.decideLocked(k, st, w, v, now, off, cfg)
		if l != nil {
			launches = append(launches, *l)
		}
		if !at.IsZero() && (wake.IsZero() || at.Before(wake)) {
			wake = at
		}
		if st.version != st.reported {
			touched = append(touched, k)
		}
	}
	return launches, touched, wake
}

// lotWatcher is one user's watching of a lot: the watcher whose config
// rules it and every auction id the user watches the lot under.
type lotWatcher struct {
	Watcher
	ids []string
}

// lotWatchers merges the watchers of one user into one, since the rules
// hold per lot. Of several configs the one with the lowest maximum rules:
// the engine never bids above a maximum the user set for the lot.
func lotWatchers(watchers []Watcher) []lotWatcher {
	var out []lotWatcher
	byUser := make(map[string]int, len(watchers))
	for _, w := range watchers {
		i, seen := byUser[w.User]
		if !seen {
			byUser[w.User] = len(out)
			out = append(out, lotWatcher{Watcher: w, ids: []string{w.AuctionID}})
			continue
		}
		lw := &out[i]
		lw.ids = append(lw.ids, w.AuctionID)
		if w.Config.MaxBid < lw.Config.MaxBid || (w.Config.MaxBid == lw.Config.MaxBid && w.AuctionID < lw.AuctionID) {
			lw.Watcher = w
		}
	}
	return out
}

// observeChange updates whether the user is winning from a change of the
// feed: a price above the user's maximum is someone else's bid, and a
// snapshot fetched with the user's own cookies says it outright (the
// change's User, when it is this user's). A live event carries no user
// state, so only polled changes are believed.
func observeChange(st *bidState, w Watcher, c *hub.Change) {
	p := &c.Product
	if st.winning && p.CurrentBid > float64(st.winMax) {
		st.winning = false
		st.version++
	}
	us := c.User
	if c.Source != hub.SourceSSE && us != nil && w.StateKey != "" && us.Owner == w.StateKey && us.IsWinning != st.winning {
		st.winning = us.IsWinning
		if st.winning {
			st.winMax = max(st.winMax, int(math.Ceil(p.CurrentBid)))
		}
		st.version++
	}
}

// decideLocked applies the rules to one user's auction and, when a bid is
// due, marks it in flight and returns it. It also returns when to look
// again without news. The caller holds e.mu.
func (e *Engine) decideLocked(k stateKey, st *bidState, w Watcher, v *view, now time.Time, off Offset, cfg *Config) (*launch, time.Time) {
	strategy := w.Config.AutoStrategy()
	if strategy == "" {
		st.setStatus(StatusIdle, "")
		return nil, time.Time{}
	}
	if w.Config.MaxBid != st.maxBid {
		st.maxBid = w.Config.MaxBid
		if st.maxReported {
			st.maxReported = false
			st.version++
		}
	}
	if cfg.Off {
		st.setStatus(StatusError, msgOff)
		return nil, time.Time{}
	}
	if !v.known() {
		st.setStatus(StatusIdle, "Waiting for the lot's price.")
		return nil, time.Time{}
	}
	if st.endedAnswer || v.ended(now.Add(off.Mid())) {
		msg := "The auction has ended."
		if st.winning {
			msg = fmt.Sprintf("The auction has ended; your bid of $%d was leading.", st.winMax)
		}
		st.setStatus(StatusEnded, msg)
		return nil, time.Time{}
	}
	if st.inFlight {
		return nil, time.Time{} // its answer brings the next look
	}
	if e.cluster().Ledger != nil && !st.loaded {
		st.setStatus(StatusBidding, "Reading this lot's bid record: bidding resumes shortly.")
		return nil, now.Add(ledgerRetry)
	}
	if st.awaitFresh {
		st.setStatus(StatusBidding, msgAwaitFresh)
		return nil, time.Time{} // the fresh snapshot brings the next look
	}
	if w.Cookies == "" {
		st.setStatus(StatusError, msgNoCookies)
		return nil, time.Time{}
	}
	if h, refused := e.authFailed[w.User]; refused && h == cookieHash(w.Cookies) {
		st.setStatus(StatusError, msgAuth)
		return nil, time.Time{}
	}
	if st.winning && v.price() > float64(st.winMax) {
		// A price above the user's maximum is someone else's bid, even
		// when it arrived before the answer that made the user leader.
		st.winning = false
		st.version++
	}
	if st.winning {
		st.setStatus(StatusWinning, fmt.Sprintf("Winning at $%s.", dollars(v.price())))
		return nil, time.Time{}
	}

	next := int(math.Ceil(v.nextBid()))
	maxWhole := int(math.Floor(w.Config.MaxBid))
	if next > maxWhole {
		if !st.maxReported {
			st.maxReported = true
			st.version++
			e.hooksNow().maxReached(strategy)
			e.log().Info("maximum bid reached", logFields(k, next, strategy)...)
		}
		st.setStatus(StatusMaxReached, fmt.Sprintf("Maximum bid $%d reached: the next bid is $%d.", maxWhole, next))
		return nil, time.Time{}
	}
	amount := next
	if strategy == StrategyAuto {
		amount = min(next+cfg.Buffer, maxWhole)
	}

	if strategy == StrategySniping {
		closeAt := v.closeTime()
		if closeAt.IsZero() {
			st.setStatus(StatusWaiting, "Sniping: waiting for the lot's close time.")
			return nil, time.Time{}
		}
		window := time.Duration(cfg.SnipeWindow)
		if w.Config.SnipeSeconds > 0 {
			window = time.Duration(w.Config.SnipeSeconds) * time.Second
		}
		// The window opens when Nellis's clock reads closeAt-window. The
		// lower bound of the offset opens it no earlier than that, and at
		// most the estimate's width later; a poor estimate uses its middle
		// rather than eat most of the window.
		shift := off.Lo
		if off.Width() > window/2 {
			shift = off.Mid()
		}
		opens := closeAt.Add(-window).Add(-shift)
		if now.Before(opens) {
			st.setStatus(StatusWaiting, fmt.Sprintf("Sniping: will bid $%d with %s left.", amount, window))
			return nil, opens
		}
	}

	if now.Before(st.retryAt) {
		st.setStatus(StatusBidding, "Nellis failed to answer the last bid: trying again shortly.")
		return nil, st.retryAt
	}
	if _, done := st.tried[amount]; done {
		st.setStatus(StatusOutbid, fmt.Sprintf("Already bid $%d: waiting for the price to move.", amount))
		return nil, time.Time{}
	}
	if ok, retryAt := st.rate.allow(now, cfg.BidsPerMinute); !ok {
		st.setStatus(StatusBidding, fmt.Sprintf("Rate limit: at most %d bids a minute on one auction.", cfg.BidsPerMinute))
		return nil, retryAt
	}
	st.tried[amount] = struct{}{}
	st.rate.record(now)
	if cfg.DryRun {
		e.recordDryRunLocked(k, st, amount, strategy, now)
		return nil, time.Time{}
	}
	st.inFlight = true
	st.setStatus(StatusBidding, fmt.Sprintf("Bidding $%d.", amount))
	e.wg.Add(1)
	e.active.Add(1)
	return &launch{key: k, amount: amount, cookies: w.Cookies, strategy: strategy}, time.Time{}
}

// recordDryRunLocked reports a bid that would have been sent.
func (e *Engine) recordDryRunLocked(k stateKey, st *bidState, amount int, strategy string, now time.Time) {
	msg := fmt.Sprintf("Dry run: would have bid $%d on product %d; nothing was sent.", amount, st.productID)
	st.history.add(Record{At: now, Amount: amount, Strategy: strategy, Result: resultDryRun, Message: msg})
	st.version++
	if strategy != StrategyManual {
		st.setStatus(StatusOutbid, msg)
	}
	e.hooksNow().bidResult(strategy, resultDryRun)
	e.log().Info("dry run bid", logFields(k, amount, strategy)...)
}

// dollars formats an amount without a needless fraction.
func dollars(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.2f", f)
}
