package cluster

import (
	"hash/fnv"
	"strconv"
)

// Rendezvous picks the node that should own the product among the live
// nodes: the one with the highest hash of (node, product). Every node
// computes the same answer from the same list, and a node joining or
// leaving moves only the products it wins or held, about 1/n of them.
// It returns "" for no nodes.
func Rendezvous(productID int64, nodes []string) string {
	var best string
	var bestScore uint64
	id := strconv.FormatInt(productID, 10)
	for _, n := range nodes {
		h := fnv.New64a()
		h.Write([]byte(n))
		h.Write([]byte{0}) // so that ("a1", 2) and ("a", 12) differ
		h.Write([]byte(id))
		score := mix(h.Sum64())
		if best == "" || score > bestScore || (score == bestScore && n < best) {
			best, bestScore = n, score
		}
	}
	return best
}

// Outranks reports whether the rendezvous hash ranks node a above node b
// for the product: between the two, a should own it.
func Outranks(productID int64, a, b string) bool {
	return a != b && Rendezvous(productID, []string{a, b}) == a
}

// mix is splitmix64's finalizer: FNV's high bits change little between
// keys that differ in their last bytes, and the highest score decides.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
