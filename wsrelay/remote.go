package wsrelay

import (
	"bytes"
	"reflect"

	"github.com/nellis-edge/gateway/users"
)

// ApplyRecord makes a loaded user's auctions, configs and cookies what
// merge makes of their record here: another gateway of a cluster changed
// them, and merge (the users' store's) applies that change to what this
// node holds, unsaved changes included. merge runs under the relay's
// lock, so no change of the user's here slips in between. It
// does what the user's own startMonitoring, updateConfig, stopMonitoring
// and cookie sync do here, with the same pushes to the user's sockets and
// the same news to the auto-bid engine, but saves nothing: the store holds
// rec already. A user this node has not loaded is left alone (their load
// reads the store).
func (r *Relay) ApplyRecord(name string, merge func(local users.Record) users.Record) {
	var acquire, release, refresh []int64
	var pushed []string
	var gone []*monitored
	r.mu.Lock()
	u := r.users[name]
	local, ok := r.dir.Record(name)
	if u == nil || !ok || r.closing {
		r.mu.Unlock()
		return
	}
	rec := merge(local)
	want := make(map[string]users.Auction, len(rec.Auctions))
	for _, a := range rec.Auctions {
		if users.ValidAuctionID(a.ID) && a.ProductID > 0 {
			want[a.ID] = a
		}
	}
	for id, m := range u.auctions {
		if _, ok := want[id]; ok {
			continue
		}
		delete(u.auctions, id)
		r.removeMonitorLocked(m)
		r.dir.Unmonitor(name, id)
		r.leftLocked(u, m.ProductID)
		release, gone = append(release, m.ProductID), append(gone, m)
	}
	for id, a := range want {
		m, ok := u.auctions[id]
		if !ok {
			if !r.dir.Monitor(name, a) {
				continue
			}
			m = newMonitored(a, u)
			u.auctions[id] = m
			r.addMonitorLocked(m)
			acquire, pushed = append(acquire, a.ProductID), append(pushed, id)
			continue
		}
		cur, _ := r.dir.Auction(name, id)
		a.ProductID, a.AddedAt = cur.ProductID, cur.AddedAt // fixed for the auction's life
		if reflect.DeepEqual(cur, a) {
			continue
		}
		updated, _ := r.dir.UpdateAuction(name, id, func(x *Auction) { *x = a })
		before := m.head
		m.setHead(updated)
		if !bytes.Equal(before, m.head) {
			pushed = append(pushed, id)
		}
		if cur.Config != updated.Config {
			refresh = append(refresh, updated.ProductID)
		}
	}
	if rec.Cookies != "" && rec.Cookies != r.dir.Cookies(name).Cookies {
		r.setCookies(u, rec.Cookies)
		// The engine looks at the user's lots again with the new cookies.
		refresh = append(refresh, r.dir.UserProducts(name)...)
	}
	if !rec.SignedIn.IsZero() {
		r.dir.SetSignedIn(name, rec.SignedIn)
	}
	r.mu.Unlock()
	for _, id := range acquire {
		r.acquire(id)
	}
	for _, id := range release {
		r.release(id)
	}
	r.refreshAutoBid(uniqueSorted(append(append(acquire, release...), refresh...))...)
	for _, m := range gone {
		r.forgetAutoBid(name, m.ID)
	}
	for _, id := range pushed {
		r.pushState(u, id)
	}
}
