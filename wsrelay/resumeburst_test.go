package wsrelay

import (
	"fmt"
	"strconv"
	"testing"
)

// TestResumeNeverDisconnectsAReader: a client that reads resumes 20
// auctions with history (64) missed changes each, more than queue_size
// (256) holds. It keeps its socket, over TLS and plain TCP (a replay is
// queued either way); every auction ends at its newest state, and each
// auction's recovered flag in the reply says what was sent: all 64
// changes in order, or the full state marked recovered:false.
func TestResumeNeverDisconnectsAReader(t *testing.T) {
	const auctions, missed = 20, 64 // missed: hub's default history
	for _, overTLS := range []bool{true, false} {
		name := "plain"
		if overTLS {
			name = "TLS"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, testConfig(), Options{})
			tlsSrv := newTLSServer(t, f)
			first := f.login(tokenAlice)
			resume := map[string]any{}
			for i := range auctions {
				id := strconv.Itoa(1000 + i)
				startMonitoring(first, id, 50)
				resume[id] = map[string]any{"epoch": "ep1", "seq": 1}
			}
			first.ws.Close()
			// The client was away for seq 2..65 of every auction.
			for seq := uint64(1); seq <= 1+missed; seq++ {
				for i := range auctions {
					f.feeds.publish(newChange(t, product(int64(1000+i), float64(seq)), "ep1", seq))
				}
			}

			var d *client
			if overTLS {
				d = dialWith(t, tlsSrv.dialer, tlsSrv.url, nil).greeted()
				d.authenticate(tokenAlice)
			} else {
				d = f.login(tokenAlice)
			}
			d.send(map[string]any{"type": "resume", "auctions": resume, "requestId": "res"})
			got := map[string][]map[string]any{} // auction id -> the states received, in order
			var reply map[string]any
			for reply == nil {
				m := d.read() // fails the test if the socket is closed
				switch m["type"] {
				case "auctionState":
					id := fmt.Sprint(auctionOf(m)["id"])
					got[id] = append(got[id], m)
				case "response":
					reply = m
				default:
					t.Fatalf("unexpected %v", m)
				}
			}
			results := reply["data"].(map[string]any)["auctions"].(map[string]any)
			replayed := 0
			for id := range resume {
				res := results[id].(map[string]any)
				states := got[id]
				if len(states) == 0 {
					t.Fatalf("auction %s: nothing sent", id)
				}
				if last := auctionOf(states[len(states)-1]); last["seq"] != float64(1+missed) {
					t.Errorf("auction %s ends at seq %v, want %d", id, last["seq"], 1+missed)
				}
				if res["recovered"] == true {
					replayed++
					if len(states) != missed || res["changes"] != float64(missed) {
						t.Errorf("auction %s recovered: %d states sent, reply says %v changes, want %d", id, len(states), res["changes"], missed)
					}
					for k, m := range states {
						if a := auctionOf(m); a["seq"] != float64(2+k) || m["recovered"] != nil {
							t.Fatalf("auction %s: replayed %v as change %d, want seq %d", id, m, k, 2+k)
						}
					}
				} else if len(states) != 1 || states[0]["recovered"] != false {
					t.Errorf("auction %s not recovered: sent %d states, first marked recovered=%v; want one full state marked false", id, len(states), states[0]["recovered"])
				}
			}
			if replayed == 0 {
				t.Error("no auction replayed: the queue takes at least the first one's changes")
			}
			t.Logf("%d of %d auctions replayed, the rest sent as full state", replayed, auctions)

			// The socket is still open and answering.
			d.send(map[string]any{"type": "ping", "requestId": "after"})
			d.expectType("pong")
		})
	}
}
