package hub

import "testing"

func TestRingAfter(t *testing.T) {
	r := newRing(3)
	for seq := uint64(1); seq <= 5; seq++ {
		r.push(&Change{Seq: seq})
	}
	seqs := func(cs []*Change) []uint64 {
		var out []uint64
		for _, c := range cs {
			out = append(out, c.Seq)
		}
		return out
	}
	for _, tc := range []struct {
		after uint64
		want  []uint64
		ok    bool
	}{
		{5, nil, true}, {4, []uint64{5}, true}, {2, []uint64{3, 4, 5}, true}, {1, nil, false}, {0, nil, false}, {6, nil, false},
	} {
		got, ok := r.after(tc.after, 5)
		if ok != tc.ok || len(got) != len(tc.want) || (len(got) > 0 && seqs(got)[0] != tc.want[0]) {
			t.Errorf("after(%d) = %v, %v; want %v, %v", tc.after, seqs(got), ok, tc.want, tc.ok)
		}
	}
}
