package loadgen

import "testing"

func TestParseState(t *testing.T) {
	for name, tc := range map[string]struct {
		msg  string
		want change
		ok   bool
	}{
		"live change": {
			msg: `{"type":"auctionState","auction":{"id":"123","title":"t","url":"u","imageUrl":null,"config":{"maxBid":5},` +
				`"status":"monitoring","data":{"id":123,"currentBid":99,"timeRemaining":5},"lastUpdate":1,"currentBid":100001,` +
				`"nextBid":100002,"timeRemaining":5,"bidderCount":2,"isClosed":false,"seq":7,"epoch":"e","source":"sse","receivedAt":1}}`,
			want: change{productID: 123, price: 100001, source: "sse", seq: 7, epoch: "e"}, ok: true,
		},
		"closed": {
			msg: `{"type":"auctionState","auction":{"id":"123","data":{"id":123,"currentBid":99,"isClosed":false},"currentBid":100001,` +
				`"nextBid":100002,"timeRemaining":0,"bidderCount":2,"isClosed":true,"seq":8,"epoch":"e","source":"sse","receivedAt":1}}`,
			want: change{productID: 123, price: 100001, source: "sse", seq: 8, epoch: "e"}, ok: true,
		},
		"unrecovered resume": {
			msg:  `{"type":"auctionState","recovered":false,"auction":{"id":"9","data":{},"currentBid":5.5,"source":"poll"}}`,
			want: change{productID: 9, price: 5.5, source: "poll"}, ok: true,
		},
		"no change yet": {
			msg: `{"type":"auctionState","auction":{"id":"9","title":"t","status":"monitoring","data":null,"lastUpdate":1}}`,
		},
		"heartbeat":      {msg: `{"type":"heartbeat","ts":1}`},
		"non-numeric id": {msg: `{"type":"auctionState","auction":{"id":"abc","currentBid":1}}`},
		"truncated":      {msg: `{"type":"auctionState","auction":{"id":"12`},
	} {
		got, ok := parseState([]byte(tc.msg))
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: parseState = %+v, %v; want %+v, %v", name, got, ok, tc.want, tc.ok)
		}
	}
}
