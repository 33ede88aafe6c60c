package clusterusers

import (
	"encoding/json"
	"slices"
	"sync"

	"github.com/nellis-edge/gateway/users"
)

// A user of a signed token is loaded on the nodes where they signed in,
// and only there; their lots may be owned by a node they never reached,
// whose engine alone bids on them. The watch therefore notes, for every
// user this node has not loaded (a stranger), the products their
// auctions are on, and tells Options.Stranger of each change: the owner
// of one of those products loads the user (Load) to bid for them, and a
// node that becomes a product's owner later asks for the strangers with
// an auction on it (Strangers). The index holds names and product ids,
// no cookies, only for users whose record the bucket holds.

// strangers indexes the users this node has not loaded by product.
type strangers struct {
	mu        sync.Mutex // a leaf
	products  map[string][]int64
	byProduct map[int64]map[string]struct{}
}

func newStrangers() *strangers {
	return &strangers{products: make(map[string][]int64), byProduct: make(map[int64]map[string]struct{})}
}

// set makes products the stranger's (none: not indexed).
func (x *strangers) set(name string, products []int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, p := range x.products[name] {
		if set := x.byProduct[p]; set != nil {
			delete(set, name)
			if len(set) == 0 {
				delete(x.byProduct, p)
			}
		}
	}
	if len(products) == 0 {
		delete(x.products, name)
		return
	}
	x.products[name] = products
	for _, p := range products {
		set := x.byProduct[p]
		if set == nil {
			set = make(map[string]struct{})
			x.byProduct[p] = set
		}
		set[name] = struct{}{}
	}
}

// on lists, sorted, the strangers with an auction on productID.
func (x *strangers) on(productID int64) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var names []string
	for name := range x.byProduct[productID] {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// recordProducts are the products of a stored record's auctions, sorted
// and once each; none for a record that cannot be read. Cookies are not
// opened.
func recordProducts(data []byte) []int64 {
	var stored struct {
		Version  int             `json:"version"`
		Auctions []users.Auction `json:"auctions"`
	}
	if json.Unmarshal(data, &stored) != nil || stored.Version != users.RecordVersion {
		return nil
	}
	var ids []int64
	for _, a := range stored.Auctions {
		if a.ProductID > 0 {
			ids = append(ids, a.ProductID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Strangers lists, sorted, the users this node has not loaded whose
// stored record has an auction on productID, as the watch last saw them.
func (s *Store) Strangers(productID int64) []string { return s.strangers.on(productID) }

// Unload notes that this node let go of a user it had loaded: the watch
// indexes them as a stranger again, from the record it last knew.
func (s *Store) Unload(name string) {
	s.mu.Lock()
	k, ok := s.base[name]
	delete(s.base, name)
	s.mu.Unlock()
	if !ok {
		return
	}
	var products []int64
	for _, a := range k.rec.Auctions {
		if a.ProductID > 0 {
			products = append(products, a.ProductID)
		}
	}
	slices.Sort(products)
	s.strangers.set(name, slices.Compact(products))
}
