package hub

import (
	"testing"
)

// use_sse 5% follows 5% ±1% of lots by SSE, the same lots every time, and
// a larger share only adds lots.
func TestSSEShareIsStableAndNearItsPercent(t *testing.T) {
	const base = 58040119 // product ids as Nellis numbers them
	n5 := 0
	for i := range int64(10000) {
		id := base + i
		in5 := InSSEShare(id, 5)
		if in5 {
			n5++
		}
		if in5 != InSSEShare(id, 5) {
			t.Fatalf("product %d changed sides", id)
		}
		if in5 && !InSSEShare(id, 10) {
			t.Fatalf("product %d in 5%% but not in 10%%", id)
		}
	}
	if n5 < 400 || n5 > 600 {
		t.Fatalf("%d of 10000 lots in 5%%, want 500±100", n5)
	}
	if !InSSEShare(base, 100) || InSSEShare(base, 0) {
		t.Fatal("100% must take every lot and 0% none")
	}
}

// The lots outside the share are polled only; a reload with the same share
// moves no lot, and one to 100% opens the rest without closing any.
func TestSSEShareAcrossReconfigures(t *testing.T) {
	cfg := sseConfig()
	cfg.SSEPercent = 20
	e := newEnv(t, cfg)
	const lots = 40
	var inShare []int64
	for id := int64(1); id <= lots; id++ {
		t.Cleanup(e.h.Subscribe(id, newRecorder()))
		if InSSEShare(id, 20) {
			inShare = append(inShare, id)
		}
	}
	if len(inShare) == 0 || len(inShare) == lots {
		t.Fatalf("%d of %d test lots in the share: pick other ids", len(inShare), lots)
	}
	streams := map[int64]*fakeStream{}
	for range inShare {
		s := e.waitOpened()
		if !InSSEShare(s.id, 20) {
			t.Fatalf("stream opened for product %d, outside the share", s.id)
		}
		streams[s.id] = s
	}
	for id := int64(1); id <= lots; id++ {
		want := "closed"
		if streams[id] == nil {
			want = "disabled"
		}
		e.waitStatus(id, "breaker "+want, func(s FeedStatus) bool { return s.Breaker == want })
	}

	e.h.UpdateConfig(cfg)
	for id := int64(1); id <= lots; id++ {
		e.waitStatus(id, "reconfigured", func(FeedStatus) bool { return true })
	}
	e.rebalancedAt()
	e.noOpen()

	cfg.SSEPercent = 100
	e.h.UpdateConfig(cfg)
	for range lots - len(inShare) {
		if s := e.waitOpened(); streams[s.id] != nil {
			t.Fatalf("product %d opened a second stream", s.id)
		}
	}
	for id, s := range streams {
		if s.isClosed() {
			t.Fatalf("product %d's stream closed by the switch to 100%%", id)
		}
	}
}
