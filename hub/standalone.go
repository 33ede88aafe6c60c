package hub

import (
	"time"

	"go.uber.org/zap"
)

// Bus loss. A node that has been without NATS for a full lease
// (cluster.Bus.Lost: disconnected, or connected to a server whose
// JetStream acknowledges none of its writes) holds no valid lease any more: its owners stopped
// acting by then, and the other nodes take its products over. Rather than
// leave its own clients without prices, each of its feeds with local
// interest becomes STANDALONE: it runs the upstream as a single node does,
// under a fresh epoch of its own (a client resuming from the log's epoch
// gets recovered:false, never a seq that means something else), and
// appends nothing. It bids nothing (Owns is false without a lease), and
// readiness says so (Standalone).
//
// When NATS is back the feed claims its product at once: claimed, its
// current state continues the log's epoch at the next seq (the standalone
// epoch gives way to the log's); held by another node, it closes its
// upstream and reads the log as a reader. Only its own expired key can
// hold it up a lease, as it holds up every other node.

// Standalone reports whether this node is cut off from the cluster: it
// has been without NATS for a full lease and serves its own clients
// alone. Always false on a single node.
func (h *Hub) Standalone() bool {
	return h.sharing != nil && h.sharing.bus.Lost()
}

// BidsPaused reports, for the auto-bid engine, that no lot may be bid on
// here for a reason the users should be told: the node is standalone.
func (h *Hub) BidsPaused() bool { return h.Standalone() }

// watchBus follows Bus.Lost: on each change it logs, tells the hook and
// wakes every cluster feed, until Hub.Close.
func (s *sharing) watchBus() {
	every := s.bus.RenewEvery() / 2
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.h.stop:
			return
		case <-t.C:
		}
		lost := s.bus.Lost()
		if lost == s.alone.Load() {
			continue
		}
		s.alone.Store(lost)
		if lost {
			s.h.log.Warn("cluster: NATS or its JetStream unreachable for a full lease; serving this node's clients standalone, auto-bid paused")
		} else {
			s.h.log.Info("cluster: NATS is back; rejoining the cluster")
		}
		if hook := s.h.hooks.Standalone; hook != nil {
			hook(lost)
		}
		s.h.mu.Lock()
		for _, f := range s.h.feeds {
			if f.share != nil {
				f.share.wake()
			}
		}
		s.h.mu.Unlock()
	}
}

// goAlone makes the feed standalone: what it owned is given up without a
// word to NATS (the key runs out by itself), and the upstream opens under
// a fresh epoch.
func (f *feed) goAlone() {
	sh := f.share
	if sh.role == roleOwner {
		f.stepDown(HandoverLapsed)
	}
	sh.role = roleAlone
	sh.aloneEpoch = f.nextEpoch()
	sh.claimAt = time.Time{} // the first claim is at once, when NATS is back
	sh.setOwner("")
	sh.take() // the log's entries are read again on rejoining
	f.h.markReader(f, false)
	f.log.Warn("cluster: serving this product standalone until NATS is back", zap.String("epoch", sh.aloneEpoch))
	f.startFetch(fetchInitial)
}

// aloneSeq is the standalone feed's next epoch and seq.
func (f *feed) aloneSeq() (string, uint64) {
	epoch := f.share.aloneEpoch
	if f.last == nil || f.last.Epoch != epoch {
		return epoch, 1
	}
	return epoch, f.last.Seq + 1
}

// giveWay ends standalone service once another node owns the product:
// the upstream closes and the log's epoch replaces the standalone one.
func (f *feed) giveWay(owner string) {
	sh := f.share
	sh.role = roleReader
	sh.setOwner(owner)
	f.h.markReader(f, true)
	f.closeStream()
	f.nextPoll = time.Time{}
	f.reconcileAfter = false
	f.log.Info("cluster: another node owns the product; reading its log again", zap.String("owner", owner))
	sh.fromStart = true
	f.catchUp()
}
