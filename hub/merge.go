package hub

import (
	"bytes"
	"time"

	"github.com/nellis-edge/gateway/nellis"
)

// closeTimeTolerance is the smallest close-time move that counts as a change:
// a close time derived from a whole-second timeRemaining wobbles by the
// event's latency, and clients must not be woken for that.
const closeTimeTolerance = time.Second

// merge applies patch, received at receivedAt (on Nellis's clock), to prev
// and reports whether anything a client can see differs. Its rules keep a product sane whatever
// order its sources arrive in:
//   - a missing field (nil, or an empty string) never blanks a known one;
//   - price and bid count never go backwards: a patch reporting a lower
//     price or bid count than known is stale (a poll that started before an
//     SSE bid), and none of its bid-related fields are taken (see stale);
//   - closed is final: a closed lot never reopens;
//   - a relative TimeRemaining becomes CloseTime = receivedAt + remaining;
//   - a newer bid without its bidder leaves the bidder unknown, not the
//     older bid's;
//   - a next bid the price has caught up with is replaced by the price
//     plus one (raiseNextBid).
func merge(prev nellis.Product, p *nellis.Patch, receivedAt time.Time) (nellis.Product, bool) {
	next := prev
	changed := false

	if !stale(prev, p) {
		setValue(&next.CurrentBid, p.CurrentBid, &changed)
		setValue(&next.BidCount, p.BidCount, &changed)
		setValue(&next.NextBid, p.NextBid, &changed)
		setValue(&next.MinimumBid, p.MinimumBid, &changed)
		raiseNextBid(&prev, &next, p)
		setValue(&next.BidderCount, p.BidderCount, &changed)
		setString(&next.LastBidder, p.LastBidder, &changed)
		if p.LastBidder == nil && (next.BidCount != prev.BidCount || next.CurrentBid != prev.CurrentBid) {
			// A newer bid without its bidder (a snapshot carries none):
			// the known bidder made an older bid.
			next.LastBidder = ""
		}
		switch {
		case p.CloseTime != nil && !p.CloseTime.IsZero():
			setTime(&next.CloseTime, *p.CloseTime, closeTimeTolerance, &changed)
		case p.TimeRemaining != nil && *p.TimeRemaining >= 0 && !receivedAt.IsZero():
			setTime(&next.CloseTime, receivedAt.Add(*p.TimeRemaining), closeTimeTolerance, &changed)
		}
	}

	setString(&next.Title, p.Title, &changed)
	setValue(&next.ExtensionInterval, p.ExtensionInterval, &changed)
	setValue(&next.RetailPrice, p.RetailPrice, &changed)
	setString(&next.InventoryNumber, p.InventoryNumber, &changed)
	setString(&next.ImageURL, p.ImageURL, &changed)
	if len(p.Location) > 0 && !bytes.Equal(p.Location, prev.Location) {
		next.Location = bytes.Clone(p.Location)
		changed = true
	}

	if !prev.IsClosed {
		setValue(&next.IsClosed, p.IsClosed, &changed)
		setString(&next.MarketStatus, p.MarketStatus, &changed)
	} else if p.MarketStatus != nil && *p.MarketStatus != "" && !openStatus(*p.MarketStatus) {
		// A closed lot may still move from "closed" to "sold", never back.
		setString(&next.MarketStatus, p.MarketStatus, &changed)
	}
	setValue(&next.FinalBid, p.FinalBid, &changed)
	setString(&next.Winner, p.Winner, &changed)
	if p.ClosedAt != nil && !p.ClosedAt.IsZero() {
		setTime(&next.ClosedAt, *p.ClosedAt, 0, &changed)
	}
	return next, changed
}

// stale reports whether p is older than prev as far as bids go: it reports
// fewer bids, or a lower price without reporting more bids. A patch with
// more bids than known is newer whatever its price: each bid raises the
// count, so a lower price there means the known one was wrong (a malformed
// event that got past the decoder's bounds), and without this rule one
// absurd price would refuse every later bid and close time for the feed's
// life.
func stale(prev nellis.Product, p *nellis.Patch) bool {
	switch {
	case p.BidCount != nil && *p.BidCount < prev.BidCount:
		return true
	case p.BidCount != nil && *p.BidCount > prev.BidCount:
		return false
	}
	return p.CurrentBid != nil && *p.CurrentBid < prev.CurrentBid
}

// raiseNextBid keeps the next and minimum bid above the price after a bid.
// A bid event moves the price but need not carry the next bid (docs/protocol.md,
// SSE events), and keeping the known one would show a next bid at or below the
// price until the next snapshot, up to a safety-net interval later: a
// bidder offering it is refused as too low. Nellis's own fallback is the
// price plus one (Snapshots), which the next snapshot confirms or corrects. Only
// a bid (the price or the bid count moved) raises it, since before the
// first bid the next bid may equal the price; only values the patch left
// out are raised; an unknown (zero) one stays unknown.
func raiseNextBid(prev, next *nellis.Product, p *nellis.Patch) {
	if next.CurrentBid == prev.CurrentBid && next.BidCount == prev.BidCount {
		return
	}
	// A price that went down corrects a wrong one (see stale): the next
	// bid derived from it is wrong too.
	corrected := next.CurrentBid < prev.CurrentBid
	if p.NextBid == nil && next.NextBid != 0 && (next.NextBid <= next.CurrentBid || corrected) {
		next.NextBid = next.CurrentBid + 1
	}
	if p.MinimumBid == nil && next.MinimumBid != 0 && (next.MinimumBid <= next.CurrentBid || corrected) {
		next.MinimumBid = next.CurrentBid + 1
	}
}

func openStatus(s string) bool { return s == "open" || s == "active" }

// over reports whether the lot is confirmed finished: polling it further
// cannot change anything. A passed close time alone is not enough, since a
// late bid extends it (soft close).
func over(p *nellis.Product) bool {
	return p.IsClosed || (p.MarketStatus != "" && !openStatus(p.MarketStatus))
}

func setValue[T comparable](dst *T, src *T, changed *bool) {
	if src != nil && *dst != *src {
		*dst = *src
		*changed = true
	}
}

func setString(dst *string, src *string, changed *bool) {
	if src != nil && *src != "" && *dst != *src {
		*dst = *src
		*changed = true
	}
}

// setTime stores t (in UTC, without a monotonic reading, so equal instants
// compare equal) when it moved by more than tolerance.
func setTime(dst *time.Time, t time.Time, tolerance time.Duration, changed *bool) {
	t = t.Round(0).UTC()
	if d := t.Sub(*dst); dst.IsZero() || d > tolerance || d < -tolerance || (tolerance == 0 && !t.Equal(*dst)) {
		*dst = t
		*changed = true
	}
}
