package hub

// ring keeps the last changes of a feed, oldest first, for Since.
type ring struct {
	buf   []*Change
	start int // index of the oldest
	n     int
}

func newRing(size int) ring { return ring{buf: make([]*Change, size)} }

func (r *ring) push(c *Change) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = c
		r.n++
		return
	}
	r.buf[r.start] = c
	r.start = (r.start + 1) % len(r.buf)
}

// after returns the changes with a seq above seq, in order, or false when
// the ring no longer holds all of them or seq is beyond the newest. Seqs in
// the ring are consecutive.
func (r *ring) after(seq uint64) ([]*Change, bool) {
	var latest uint64 // 0 before the first change
	if r.n > 0 {
		latest = r.buf[(r.start+r.n-1)%len(r.buf)].Seq
	}
	if seq > latest {
		return nil, false
	}
	if seq == latest {
		return []*Change{}, true
	}
	oldest := r.buf[r.start].Seq
	if seq+1 < oldest {
		return nil, false
	}
	out := make([]*Change, 0, latest-seq)
	for i := int(seq + 1 - oldest); i < r.n; i++ {
		out = append(out, r.buf[(r.start+i)%len(r.buf)])
	}
	return out, true
}
