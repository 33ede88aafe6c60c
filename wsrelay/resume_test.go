package wsrelay

import (
	"testing"
)

func TestResume(t *testing.T) {
	f := newFixture(t, testConfig(), Options{})
	c := f.login(tokenAlice)
	startMonitoring(c, "42", 50)
	for seq := uint64(1); seq <= 5; seq++ {
		f.feeds.publish(newChange(t, product(42, float64(seq)), "ep1", seq))
		if a := auctionOf(c.expectType("auctionState")); a["seq"] != float64(seq) {
			t.Fatalf("live seq %v, want %d", a["seq"], seq)
		}
	}

	// A client that saw seq 2 gets exactly 3, 4 and 5, in order, then the reply.
	d := f.login(tokenAlice)
	d.send(map[string]any{"type": "resume", "auctions": map[string]any{"42": map[string]any{"epoch": "ep1", "seq": 2}}, "requestId": "res"})
	for want := 3.0; want <= 5; want++ {
		m := d.expectType("auctionState")
		if a := auctionOf(m); a["seq"] != want || a["currentBid"] != want || m["recovered"] != nil || m["requestId"] != nil {
			t.Fatalf("replayed %v, want seq %v", m, want)
		}
	}
	r := d.expectType("response")
	if r["requestId"] != "res" || r["action"] != "resume" ||
		r["data"].(map[string]any)["auctions"].(map[string]any)["42"].(map[string]any)["recovered"] != true {
		t.Fatalf("resume reply %v", r)
	}

	// History gone (or another epoch): the full state, marked recovered:false.
	f.feeds.trim(42, 1)
	for _, point := range []map[string]any{{"epoch": "ep1", "seq": 1}, {"epoch": "old", "seq": 9}} {
		d.send(map[string]any{"type": "resume", "auctions": map[string]any{"42": point}, "requestId": "res2"})
		m := d.expectType("auctionState")
		if a := auctionOf(m); m["recovered"] != false || a["seq"] != 5.0 || a["currentBid"] != 5.0 {
			t.Fatalf("unrecovered %v", m)
		}
		d.expectType("response")
	}

	// Another user's auction resumes nothing.
	b := f.login(tokenBob)
	b.send(map[string]any{"type": "resume", "auctions": map[string]any{"42": map[string]any{"epoch": "ep1", "seq": 2}}, "requestId": "x"})
	if r := b.expectType("response"); r["data"].(map[string]any)["auctions"].(map[string]any)["42"].(map[string]any)["found"] != false {
		t.Fatalf("bob resumed alice's auction: %v", r)
	}
	u := f.connect()
	u.send(map[string]any{"type": "resume", "auctions": map[string]any{}, "requestId": "y"})
	u.expectError("Not authenticated", "y")
}
