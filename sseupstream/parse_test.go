package sseupstream

import (
	"strings"
	"testing"
)

func TestParseFrame(t *testing.T) {
	tests := []struct {
		block   string
		name    string
		data    string
		hasData bool
	}{
		{"data: ping", "", "ping", true},
		{"data:ping", "", "ping", true},
		{"data:  two spaces", "", " two spaces", true},
		{"event: e\ndata: {}", "e", "{}", true},
		{"event: e\r\ndata: a\r\ndata: b", "e", "a\nb", true},
		{"data", "", "", true},
		{"data:", "", "", true},
		{"event: only", "only", "", false},
		{": comment\ndata: x", "", "x", true},
		{"id: 7\nretry: 10\ndata: x", "", "x", true},
		{"# note\nunknown: y", "", "", false},
		{"event: a\nevent: b\ndata: x", "b", "x", true},
	}
	for _, tt := range tests {
		f := parseFrame([]byte(tt.block))
		if f.name != tt.name || string(f.data) != tt.data || f.hasData != tt.hasData {
			t.Errorf("%q: got %q %q %v, want %q %q %v", tt.block, f.name, f.data, f.hasData, tt.name, tt.data, tt.hasData)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name, data string
		kind       Kind
		session    string
		errText    string
	}{
		{"", "ping", Ping, "", ""},
		{"message", "ping", Ping, "", ""},
		{"", "connected abc,0x1-0x2", Connected, "abc,0x1-0x2", ""},
		{"", "connected", Connected, "", ""},
		{"", "hello", Other, "", ""},
		{"ch_product_bids:58040119", `{"currentBid":"12.50"}`, Bid, "", ""},
		{"ch_product_closed:58040119", `{}`, Closed, "", ""},
		{"ch_product_bids:58040119", `<html>`, 0, "", "decode bid payload"},
		{"ch_product_bids:1", `{"currentBid":1}`, 0, "", "for product 1, not 58040119"},
		{"ch_product_bids:", `{"currentBid":1}`, 0, "", "no numeric product id"},
		{"ch_product_closed:58040119", `{"productId":2}`, 0, "", "payload is for product 2"},
		{"ch_product_watchers:58040119", `{}`, Other, "", ""},
	}
	for _, tt := range tests {
		ev, err := classify(testProductID, frame{name: tt.name, data: []byte(tt.data), hasData: true})
		if tt.errText != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("%s %q: error %v, want one containing %q", tt.name, tt.data, err, tt.errText)
			}
			continue
		}
		if err != nil || ev.Kind != tt.kind || ev.SessionID != tt.session || ev.ProductID != testProductID {
			t.Errorf("%s %q: got %v %q %v, want %v %q", tt.name, tt.data, ev.Kind, ev.SessionID, err, tt.kind, tt.session)
		}
	}
}

func TestKindString(t *testing.T) {
	for kind, want := range map[Kind]string{Connected: "connected", Ping: "ping", Bid: "bid", Closed: "closed", Other: "other", 0: "kind(0)"} {
		if got := kind.String(); got != want {
			t.Errorf("%d: %q, want %q", int(kind), got, want)
		}
	}
}
