package bidding

import (
	"time"

	"github.com/nellis-edge/gateway/users"
)

// Record is one bid in a user's history of an auction (users.BidRecord).
type Record = users.BidRecord

// resultDryRun is the Result of a bid decided in a dry run.
const resultDryRun = "dry_run"

// history is a ring of the last HistorySize records.
type history struct {
	buf  []Record
	next int // where the next record goes once buf is full
}

func (h *history) add(r Record) {
	if len(h.buf) < HistorySize {
		h.buf = append(h.buf, r)
		return
	}
	h.buf[h.next] = r
	h.next = (h.next + 1) % HistorySize
}

// list returns the records oldest first, as a copy.
func (h *history) list() []Record {
	out := make([]Record, 0, len(h.buf))
	out = append(out, h.buf[h.next:]...)
	return append(out, h.buf[:h.next]...)
}

// rateWindow counts the bids of the last minute.
type rateWindow struct {
	sent []time.Time // oldest first, within the last minute
}

const rateSpan = time.Minute

// allow reports whether another bid fits at now under limit, and if not,
// when one will.
func (w *rateWindow) allow(now time.Time, limit int) (ok bool, retryAt time.Time) {
	i := 0
	for i < len(w.sent) && !now.Before(w.sent[i].Add(rateSpan)) {
		i++
	}
	w.sent = w.sent[i:]
	if len(w.sent) < limit {
		return true, time.Time{}
	}
	return false, w.sent[len(w.sent)-limit].Add(rateSpan)
}

func (w *rateWindow) record(now time.Time) { w.sent = append(w.sent, now) }

// idle reports whether no bid of the last minute counts against the limit.
func (w *rateWindow) idle(now time.Time) bool {
	return len(w.sent) == 0 || !now.Before(w.sent[len(w.sent)-1].Add(rateSpan))
}
