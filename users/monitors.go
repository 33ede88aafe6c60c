package users

import (
	"cmp"
	"slices"
)

// The auctions each user monitors, with their configs: the Directory is
// where they live, so whoever asks (the relay for a user's list and the
// record to save, the engine for who auto-bids on a lot, the hub for
// whose cookies fetch a snapshot) gets one answer. The products index
// (who monitors each product) is kept with them, under the same lock.

// Monitor adds a to the auctions name monitors. It returns false, and
// changes nothing, for a user not configured or an auction they monitor
// already.
func (d *Directory) Monitor(name string, a Auction) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	acc := d.accounts[name]
	if acc == nil || acc.auctions[a.ID] != nil {
		return false
	}
	acc.auctions[a.ID] = &a
	d.indexLocked(name, &a)
	return true
}

// Unmonitor removes the auction name monitors under auctionID and
// returns it; false when there is none.
func (d *Directory) Unmonitor(name, auctionID string) (Auction, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	acc, a := d.monitoredLocked(name, auctionID)
	if a == nil {
		return Auction{}, false
	}
	delete(acc.auctions, auctionID)
	d.unindexLocked(name, a)
	return *a, true
}

// UpdateAuction lets change edit name's auction and returns the auction as
// it is now; false when there is none. change runs under the Directory's
// lock, so it only edits the value it is given; the auction keeps its id
// and product whatever change does.
func (d *Directory) UpdateAuction(name, auctionID string, change func(*Auction)) (Auction, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	acc, old := d.monitoredLocked(name, auctionID)
	if old == nil {
		return Auction{}, false
	}
	a := *old
	change(&a)
	a.ID, a.ProductID = old.ID, old.ProductID
	acc.auctions[auctionID] = &a
	if p := d.products[a.ProductID]; p != nil { // the same product and user: only auto-bid may change
		if k := (userAuction{name, a.ID}); a.Config.AutoBid {
			p.autoBid[k] = struct{}{}
		} else {
			delete(p.autoBid, k)
		}
	}
	return a, true
}

// Auction returns name's auction monitored under auctionID.
func (d *Directory) Auction(name, auctionID string) (Auction, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if _, a := d.monitoredLocked(name, auctionID); a != nil {
		return *a, true
	}
	return Auction{}, false
}

// monitoredLocked is name's auction under auctionID and the account that
// holds it; a nil auction when there is none. d.mu is held.
func (d *Directory) monitoredLocked(name, auctionID string) (*account, *Auction) {
	acc := d.accounts[name]
	if acc == nil {
		return nil, nil
	}
	return acc, acc.auctions[auctionID]
}

// Auctions lists the auctions name monitors, oldest first (by AddedAt,
// then id); nil for a user not configured.
func (d *Directory) Auctions(name string) []Auction {
	d.mu.RLock()
	defer d.mu.RUnlock()
	acc := d.accounts[name]
	if acc == nil {
		return nil
	}
	return acc.auctionList()
}

// auctionList copies the account's auctions, oldest first; callers hold
// the Directory's lock.
func (a *account) auctionList() []Auction {
	out := make([]Auction, 0, len(a.auctions))
	for _, au := range a.auctions {
		out = append(out, *au)
	}
	slices.SortFunc(out, func(x, y Auction) int {
		return cmp.Or(cmp.Compare(x.AddedAt, y.AddedAt), cmp.Compare(x.ID, y.ID))
	})
	return out
}

// MonitorCount is how many auctions name monitors.
func (d *Directory) MonitorCount(name string) int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if acc := d.accounts[name]; acc != nil {
		return len(acc.auctions)
	}
	return 0
}

// UserProducts lists, sorted, the products name monitors: an engine looks
// at them again once the user's cookies change, and each counts against
// the user's product limit. nil for a user not configured.
func (d *Directory) UserProducts(name string) []int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	acc := d.accounts[name]
	if acc == nil {
		return nil
	}
	out := make([]int64, 0, len(acc.auctions))
	for _, a := range acc.auctions {
		if !slices.Contains(out, a.ProductID) {
			out = append(out, a.ProductID)
		}
	}
	slices.Sort(out)
	return out
}

// AutoBidders lists the auctions on productID with autoBid on, in user
// order, with each user's cookies and state key. The cookies are
// secrets: never log them.
func (d *Directory) AutoBidders(productID int64) []AutoBidder {
	d.mu.RLock()
	defer d.mu.RUnlock()
	p := d.products[productID]
	if p == nil || len(p.autoBid) == 0 {
		return nil
	}
	out := make([]AutoBidder, 0, len(p.autoBid))
	for k := range p.autoBid {
		acc := d.accounts[k.user]
		if acc == nil || acc.auctions[k.auction] == nil {
			continue
		}
		a := acc.auctions[k.auction]
		out = append(out, AutoBidder{
			User: k.user, AuctionID: a.ID, Config: a.Config,
			Cookies: acc.cookies, StateKey: acc.stateKey,
		})
	}
	slices.SortFunc(out, func(x, y AutoBidder) int {
		return cmp.Or(cmp.Compare(x.User, y.User), cmp.Compare(x.AuctionID, y.AuctionID))
	})
	return out
}

// Record is name's record as it is now, to save: their auctions (oldest
// first), their cookies and the sealed ones no key opened. false for a
// user not configured.
func (d *Directory) Record(name string) (Record, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	acc := d.accounts[name]
	if acc == nil {
		return Record{}, false
	}
	return Record{Auctions: acc.auctionList(), Cookies: acc.cookies, Unopened: acc.unopened, SignedIn: acc.signedIn}, true
}

// setAuctionsLocked makes list name's auctions, in place of those they
// had; callers hold the Directory's write lock.
func (d *Directory) setAuctionsLocked(name string, acc *account, list []Auction) {
	for _, a := range acc.auctions {
		d.unindexLocked(name, a)
	}
	acc.auctions = make(map[string]*Auction, len(list))
	for _, a := range list {
		if old := acc.auctions[a.ID]; old != nil {
			d.unindexLocked(name, old) // a record is a list: the last of an id wins
		}
		acc.auctions[a.ID] = &a
		d.indexLocked(name, &a)
	}
}
