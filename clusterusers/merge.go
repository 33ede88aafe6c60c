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
// stays theirs, down to each field of an auction both changed (the
// user's maxBid changed on one node, the strategy on another, at once);
// a field both changed is this node's, the later write.
func merge(base, ours, theirs users.Record) users.Record {
	out := cloneRecord(theirs)
	baseBy := byID(base.Auctions)
	oursBy := byID(ours.Auctions)
	outBy := byID(out.Auctions)
	for id, a := range oursBy {
		b, known := baseBy[id]
		t, kept := outBy[id]
		switch {
		case known && reflect.DeepEqual(a, b):
		case known && kept:
			outBy[id] = mergeFields(b, a, t) // changed here, and maybe there
		default:
			outBy[id] = a // added here, or changed here and removed there
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

// mergeFields is theirs with each field ours changed from base set to
// ours, into nested structs (an auction's config) field by field.
func mergeFields[T any](base, ours, theirs T) T {
	out := theirs
	setChanged(reflect.ValueOf(&out).Elem(), reflect.ValueOf(base), reflect.ValueOf(ours))
	return out
}

func setChanged(out, base, ours reflect.Value) {
	for i := range out.NumField() {
		b, o := base.Field(i), ours.Field(i)
		switch {
		case reflect.DeepEqual(b.Interface(), o.Interface()):
		case o.Kind() == reflect.Struct:
			setChanged(out.Field(i), b, o)
		default:
			out.Field(i).Set(o)
		}
	}
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
