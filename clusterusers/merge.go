package clusterusers

import (
	"cmp"
	"reflect"
	"slices"

	"github.com/nellis-edge/gateway/users"
)

// merge applies to theirs (the record another node wrote) what this node
// changed from base (the record as it last read or wrote it) to ours:
// the auctions it added, removed or changed, and its cookies if it
// synced new ones. What the other node changed and this one did not
// stays theirs; an auction both changed is this node's, the later write.
func merge(base, ours, theirs users.Record) users.Record {
	out := cloneRecord(theirs)
	baseBy := byID(base.Auctions)
	oursBy := byID(ours.Auctions)
	outBy := byID(out.Auctions)
	for id, a := range oursBy {
		if b, ok := baseBy[id]; !ok || !reflect.DeepEqual(a, b) {
			outBy[id] = a // added or changed here
		}
	}
	for id := range baseBy {
		if _, ok := oursBy[id]; !ok {
			delete(outBy, id) // removed here
		}
	}
	out.Auctions = make([]users.Auction, 0, len(outBy))
	for _, a := range outBy {
		out.Auctions = append(out.Auctions, a)
	}
	slices.SortFunc(out.Auctions, func(a, b users.Auction) int {
		return cmp.Or(cmp.Compare(a.AddedAt, b.AddedAt), cmp.Compare(a.ID, b.ID))
	})
	if ours.Cookies != base.Cookies || ours.Unopened != base.Unopened {
		out.Cookies, out.Unopened = ours.Cookies, ours.Unopened
	}
	if ours.SignedIn.After(out.SignedIn) {
		out.SignedIn = ours.SignedIn
	}
	out.Quarantined = false
	return out
}

func byID(list []users.Auction) map[string]users.Auction {
	m := make(map[string]users.Auction, len(list))
	for _, a := range list {
		m[a.ID] = a
	}
	return m
}

func cloneRecord(r users.Record) users.Record {
	r.Auctions = slices.Clone(r.Auctions)
	return r
}
