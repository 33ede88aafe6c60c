package hub

import (
	"hash/fnv"
	"strconv"
)

// InSSEShare reports whether product id is among the percent of lots
// followed by SSE: the FNV-1a hash of its decimal id, mod 10000, is under
// percent×100. The hash depends on the id alone, so a lot stays on its side
// across reloads, restarts and gateways, and raising the percent only adds
// lots.
func InSSEShare(id int64, percent float64) bool {
	if percent >= 100 {
		return true
	}
	if percent <= 0 {
		return false
	}
	h := fnv.New32a()
	_, _ = h.Write(strconv.AppendInt(nil, id, 10)) // never fails
	return float64(h.Sum32()%10000) < percent*100
}

// followsSSE reports whether the feed's config follows its lot by SSE.
func (f *feed) followsSSE() bool {
	return f.cfg.UseSSE && InSSEShare(f.id, f.cfg.SSEPercent)
}
