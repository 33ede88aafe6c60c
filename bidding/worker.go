package bidding

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/clock"
	"github.com/nellis-edge/gateway/hub"
)

// worker decides for one product: it wakes on the feed's changes, on the
// answers to bids and on its one timer (a snipe window opening, a rate
// limit lifting), and looks at every user auto-bidding on the product. One
// goroutine per product means two changes arriving together are looked at
// one after the other, never at once; a burst is coalesced to the newest.
type worker struct {
	e         *Engine
	productID int64
	wake      chan struct{} // capacity 1: a pending look covers every reason
	done      chan struct{}
	exited    chan struct{} // closed when run returns
	busy      chan struct{} // capacity 1: held through a look
	stopOnce  sync.Once

	mu          sync.Mutex
	latest      *hub.Change // the newest change not yet looked at
	unsubscribe func()
	stopped     bool

	// owned: the last look found this node owning the product
	// (Options.Owner). Read and written by run's goroutine only.
	owned bool

	// armed is the local instant (Unix ns) the timer is set for, 0 when
	// none; tests read it to know whether a look is still due.
	armed atomic.Int64
}

// lookWait bounds how long a stop or a Refresh waits for a look in
// progress. A look does no network I/O (the bids it decides run on their
// own), so it only runs out on a Directory or Reporter that hangs.
const lookWait = 5 * time.Second

func newWorker(e *Engine, productID int64) *worker {
	return &worker{e: e, productID: productID, wake: make(chan struct{}, 1), done: make(chan struct{}),
		exited: make(chan struct{}), busy: make(chan struct{}, 1)}
}

// Deliver takes a change from the hub. It never blocks.
func (w *worker) Deliver(c *hub.Change) {
	if c == nil || c.ProductID != w.productID {
		return
	}
	w.mu.Lock()
	if w.latest == nil || c.Epoch != w.latest.Epoch || c.Seq > w.latest.Seq {
		w.latest = c
	}
	w.mu.Unlock()
	w.poke()
}

// poke asks for a look; one pending look is enough.
func (w *worker) poke() {
	w.e.active.Add(1)
	select {
	case w.wake <- struct{}{}:
	default:
		w.e.active.Add(-1)
	}
}

func (w *worker) take() *hub.Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.latest
	w.latest = nil
	return c
}

func (w *worker) setUnsubscribe(f func()) {
	w.mu.Lock()
	if !w.stopped {
		w.unsubscribe = f
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	f() // stopped while subscribing
}

// stop ends the worker's subscription and goroutine, and waits (at most
// lookWait) for a look in progress: that look read the watchers before
// the change that stopped the worker, and must not act on them after the
// caller goes on (forgetting a user's state, say).
func (w *worker) stop() {
	w.stopOnce.Do(w.end)
	w.waitExit()
}

// waitExit waits, at most lookWait, for run to return.
func (w *worker) waitExit() {
	t := time.NewTimer(lookWait)
	defer t.Stop()
	select {
	case <-w.exited:
	case <-t.C:
		w.e.log().Warn("bidding worker still busy after its stop", zap.Int64("product_id", w.productID))
	}
}

// settle waits, at most lookWait, until no look is in progress: a look
// that began before a change of the watchers has ended, and the next one
// reads them anew.
func (w *worker) settle() {
	t := time.NewTimer(lookWait)
	defer t.Stop()
	select {
	case w.busy <- struct{}{}:
		<-w.busy
	case <-w.exited:
	case <-t.C:
		w.e.log().Warn("bidding worker look still in progress", zap.Int64("product_id", w.productID))
	}
}

func (w *worker) end() {
	w.mu.Lock()
	w.stopped = true
	unsubscribe := w.unsubscribe
	w.unsubscribe = nil
	w.mu.Unlock()
	if unsubscribe != nil {
		unsubscribe()
	}
	close(w.done)
}

func (w *worker) run() {
	defer w.e.wg.Done()
	defer close(w.exited)
	var (
		timer   clock.Timer
		timerC  <-chan time.Time
		timerAt time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		w.armed.Store(0)
	}()
	for {
		woken := false
		select {
		case <-w.done:
			select {
			case <-w.wake: // a look nobody will take
				w.e.active.Add(-1)
			default:
			}
			return
		case <-w.wake:
			woken = true
		case <-timerC:
			timer, timerC, timerAt = nil, nil, time.Time{}
		}
		next := w.look()
		if !next.Equal(timerAt) {
			if timer != nil {
				timer.Stop()
			}
			timer, timerC, timerAt = nil, nil, next
			if !next.IsZero() {
				timer = w.e.clock.NewTimer(next)
				timerC = timer.C()
			}
		}
		if timerAt.IsZero() {
			w.armed.Store(0)
		} else {
			w.armed.Store(timerAt.UnixNano())
		}
		if woken {
			w.e.active.Add(-1)
		}
	}
}

// look runs one decision round, containing a panic to this round.
func (w *worker) look() (next time.Time) {
	w.busy <- struct{}{}
	defer func() { <-w.busy }()
	defer w.e.recoverPanic("bidding worker")
	return w.e.evaluate(w, w.take())
}
