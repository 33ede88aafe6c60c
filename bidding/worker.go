package bidding

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/nellis-edge/gateway/fallback"
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
	stopOnce  sync.Once

	mu          sync.Mutex
	latest      *hub.Change // the newest change not yet looked at
	unsubscribe func()
	stopped     bool

	// armed is the local instant (Unix ns) the timer is set for, 0 when
	// none; tests read it to know whether a look is still due.
	armed atomic.Int64
}

func newWorker(e *Engine, productID int64) *worker {
	return &worker{e: e, productID: productID, wake: make(chan struct{}, 1), done: make(chan struct{})}
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

// stop ends the worker's subscription and goroutine; it does not wait.
func (w *worker) stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopped = true
		unsubscribe := w.unsubscribe
		w.unsubscribe = nil
		w.mu.Unlock()
		if unsubscribe != nil {
			unsubscribe()
		}
		close(w.done)
	})
}

func (w *worker) run() {
	defer w.e.wg.Done()
	var (
		timer   fallback.Timer
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
	defer w.e.recoverPanic("bidding worker")
	return w.e.evaluate(w.productID, w.take())
}
