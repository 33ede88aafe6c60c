package wsrelay

// interest is the relay's one hub subscription to a product.
type interest struct {
	unsubscribe func()
}

// acquire and release follow a change of who watches a product: the
// relay holds one hub subscription while any user monitors the product or
// any socket subscribed to it. Both read that from the registry rather
// than count calls: a start and a stop of one auction on two sockets at
// once may call them in either order, and a count would then subscribe
// after the last watcher left, forever. Call one after every change of
// monitors or subscribers, never holding mu.
func (r *Relay) acquire(productID int64) { r.syncInterest(productID) }

func (r *Relay) release(productID int64) { r.syncInterest(productID) }

// syncInterest subscribes to or unsubscribes from the product as the
// registry says now. Calls are serialised by interestMu and each reads
// the registry afresh, so the last one, which follows the last change,
// leaves the subscription right whatever order they ran in.
func (r *Relay) syncInterest(productID int64) {
	r.interestMu.Lock()
	defer r.interestMu.Unlock()
	r.mu.RLock()
	wanted := !r.closing && (len(r.monitors[productID]) > 0 || len(r.subscribers[productID]) > 0)
	r.mu.RUnlock()
	in := r.interest[productID]
	switch {
	case wanted && in == nil:
		r.interest[productID] = &interest{unsubscribe: r.feeds.Subscribe(productID, productSubscriber{r: r})}
	case !wanted && in != nil:
		delete(r.interest, productID)
		if in.unsubscribe != nil {
			in.unsubscribe()
		}
	}
}
