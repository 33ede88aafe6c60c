package hub

import (
	"fmt"
	"testing"
)

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
		got, ok := r.after(tc.after)
		if ok != tc.ok || len(got) != len(tc.want) || (len(got) > 0 && seqs(got)[0] != tc.want[0]) {
			t.Errorf("after(%d) = %v, %v; want %v, %v", tc.after, seqs(got), ok, tc.want, tc.ok)
		}
	}
}

func TestSince(t *testing.T) {
	cfg := sseConfig()
	cfg.History = 4
	e := newEnv(t, cfg)
	r, s, first := e.healthyFeed(7)
	for i := 2; i <= 6; i++ {
		e.bid(s, float64(100+i), 4+i)
		if c := e.waitChange(r); c.Seq != uint64(i) {
			t.Fatalf("change seq %d, want %d", c.Seq, i)
		}
	}
	epoch := first.Epoch
	seqs := func(cs []*Change) (out []uint64) {
		for _, c := range cs {
			out = append(out, c.Seq)
			if c.Product.CurrentBid != float64(100+c.Seq) {
				t.Errorf("change %d carries price %v", c.Seq, c.Product.CurrentBid)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		id    int64
		epoch string
		seq   uint64
		want  string
		ok    bool
	}{
		{"missed three", 7, epoch, 3, "[4 5 6]", true},
		{"up to date", 7, epoch, 6, "[]", true},
		{"oldest kept", 7, epoch, 2, "[3 4 5 6]", true},
		{"ring overflowed", 7, epoch, 1, "[]", false},
		{"other epoch", 7, "0123456789abcdef", 3, "[]", false},
		{"from the future", 7, epoch, 7, "[]", false},
		{"no such feed", 8, epoch, 3, "[]", false},
	} {
		got, ok := e.h.Since(tc.id, tc.epoch, tc.seq)
		if ok != tc.ok || fmt.Sprint(seqs(got)) != tc.want {
			t.Errorf("%s: Since = %v, %v; want %s, %v", tc.name, seqs(got), ok, tc.want, tc.ok)
		}
	}
	if c, ok := e.h.State(7); !ok || c.Seq != 6 || c.Product.CurrentBid != 106 {
		t.Fatalf("State: %v seq %d price %v", ok, c.Seq, c.Product.CurrentBid)
	}
}
