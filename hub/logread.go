package hub

import (
	"time"

	"go.uber.org/zap"
)

// A cluster feed reads the product's log when it joins, and again after a
// gap; a read can fail (NATS slow or away, many feeds joining at once).
// A reader whose read failed tries again, later each time, until one
// succeeds: otherwise a quiet lot's new feed would stay without its state
// until the owner's next change, and State would answer nothing. Until
// then a resuming client gets an honest recovered:false (its epoch is not
// the feed's, or the history does not reach back to its seq), never a
// wrong replay.

// joinReadWait bounds a new feed's first read of the log, and doubles
// with each failure up to maxReadWait: the node's reads queue, and
// thousands of feeds joining at once wait for a sweep of the whole log
// (cluster.JetStream.Backfill), about 11 s for 5,000 lots of 64 changes
// on this 2-core machine; State and Since wait no longer than readyWait
// for it anyway, and the feed takes the log's new entries once it is
// done. A later read (after a gap) gets readyWait, doubling with each
// failure up to joinReadWait.
const (
	joinReadWait = 15 * readyWait
	maxReadWait  = 2 * joinReadWait
)

// firstReadRetry is the wait before the first retry of a failed read of
// the log; each further one waits twice as long, up to maxReadRetry.
const (
	firstReadRetry = readyWait / 4
	maxReadRetry   = 4 * readyWait
)

// readWait is how long the next read of the log may take.
func (sh *feedShare) readWait() time.Duration {
	fails := min(sh.readFails, 2)
	if !sh.readOnce {
		return min(joinReadWait<<fails, maxReadWait)
	}
	return min(readyWait<<fails, joinReadWait)
}

// readFailed plans the next try of a failed read; the first failure of a
// run is logged.
func (f *feed) readFailed(err error) {
	sh := f.share
	if hook := f.h.hooks.LogRead; hook != nil {
		hook(f.id, false)
	}
	if sh.readFails == 0 {
		f.log.Warn("cluster: reading the product's log failed; trying again", zap.Error(err))
	} else {
		f.log.Debug("cluster: reading the product's log failed again", zap.Int("tries", sh.readFails+1), zap.Error(err))
	}
	sh.readAt = time.Now().Add(min(firstReadRetry<<min(sh.readFails, 5), maxReadRetry))
	sh.readFails++
}

// readDone ends a run of failed reads.
func (f *feed) readDone() {
	sh := f.share
	if hook := f.h.hooks.LogRead; hook != nil {
		hook(f.id, true)
	}
	if sh.readFails > 0 {
		f.log.Info("cluster: read the product's log", zap.Int("tries", sh.readFails+1))
	}
	sh.readFails, sh.readAt, sh.readOnce = 0, time.Time{}, true
}

// retryRead reads the log again once a failed read's retry is due, while
// the feed reads the log (a reader).
func (f *feed) retryRead() {
	sh := f.share
	if sh.role == roleReader && !sh.readAt.IsZero() && !time.Now().Before(sh.readAt) {
		f.catchUp()
	}
}
