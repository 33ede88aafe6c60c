package nellis

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeBidSamples(t *testing.T) {
	t.Run("expected format", func(t *testing.T) {
		p, err := DecodeBid(readSample(t, "nellis_sse_bid_update.EXPECTED-UNVERIFIED.json"))
		if err != nil {
			t.Fatal(err)
		}
		if p.ProductID != 58040119 || *p.CurrentBid != 125 || *p.BidCount != 15 ||
			*p.LastBidder != "user123" || *p.TimeRemaining != 5*time.Minute {
			t.Errorf("decoded %+v", p)
		}
		// Nothing else was sent, so nothing else may be claimed.
		if p.CloseTime != nil || p.NextBid != nil || p.BidderCount != nil || p.IsClosed != nil {
			t.Errorf("fields not in the payload are set: %+v", p)
		}
	})
	t.Run("predecessor fixture", func(t *testing.T) {
		p, err := DecodeBid(readSample(t, "nellis_sse_bid_update.unit-test-fixture.json"))
		if err != nil {
			t.Fatal(err)
		}
		if p.ProductID != 0 || *p.CurrentBid != 150 || *p.BidCount != 5 || *p.LastBidder != "user123" {
			t.Errorf("decoded %+v", p)
		}
		if p.TimeRemaining != nil {
			t.Errorf("timeRemaining invented: %v", *p.TimeRemaining)
		}
	})
}

func TestDecodeBidSynonyms(t *testing.T) {
	closeAt := time.Date(2026, 9, 16, 1, 53, 0, 0, time.UTC)
	tests := []struct {
		name  string
		data  string
		check func(t *testing.T, p Patch)
	}{
		{"currentPrice as a string", `{"currentPrice":"125.00"}`, func(t *testing.T, p Patch) {
			if p.CurrentBid == nil || *p.CurrentBid != 125 {
				t.Errorf("CurrentBid = %v", p.CurrentBid)
			}
		}},
		{"snake case", `{"current_bid":7,"bid_count":"3","last_bidder":"b***1"}`, func(t *testing.T, p Patch) {
			if *p.CurrentBid != 7 || *p.BidCount != 3 || *p.LastBidder != "b***1" {
				t.Errorf("decoded %+v", p)
			}
		}},
		{"username is the bidder", `{"username":"u9"}`, func(t *testing.T, p Patch) {
			if *p.LastBidder != "u9" {
				t.Errorf("LastBidder = %q", *p.LastBidder)
			}
		}},
		{"currentBid wins over currentPrice", `{"currentPrice":1,"currentBid":2}`, func(t *testing.T, p Patch) {
			if *p.CurrentBid != 2 {
				t.Errorf("CurrentBid = %v", *p.CurrentBid)
			}
		}},
		{"null falls through to a synonym", `{"currentBid":null,"currentPrice":3}`, func(t *testing.T, p Patch) {
			if *p.CurrentBid != 3 {
				t.Errorf("CurrentBid = %v", *p.CurrentBid)
			}
		}},
		{"close time as a date object", `{"closeTime":{"__type":"Date","value":"2026-09-16T01:53:00.000Z"}}`, func(t *testing.T, p Patch) {
			if !p.CloseTime.Equal(closeAt) {
				t.Errorf("CloseTime = %v", p.CloseTime)
			}
		}},
		{"projected close time as epoch ms", `{"projectNewCloseTime":1789523580000}`, func(t *testing.T, p Patch) {
			if !p.CloseTime.Equal(closeAt) {
				t.Errorf("CloseTime = %v", p.CloseTime)
			}
		}},
		{"minimum next bid", `{"minimumNextBid":"43","bidderCount":4}`, func(t *testing.T, p Patch) {
			if *p.NextBid != 43 || *p.MinimumBid != 43 || *p.BidderCount != 4 {
				t.Errorf("decoded %+v", p)
			}
		}},
		{"fractional seconds remaining", `{"timeRemaining":"2.5"}`, func(t *testing.T, p Patch) {
			if *p.TimeRemaining != 2500*time.Millisecond {
				t.Errorf("TimeRemaining = %v", *p.TimeRemaining)
			}
		}},
		{"product id as a string and unknown fields", `{"productId":"58040119","currentBid":1,"extendedTime":true,"x":{"y":[1]}}`, func(t *testing.T, p Patch) {
			if p.ProductID != 58040119 {
				t.Errorf("ProductID = %d", p.ProductID)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := DecodeBid([]byte(tt.data))
			if err != nil {
				t.Fatalf("DecodeBid(%s): %v", tt.data, err)
			}
			tt.check(t, p)
		})
	}
}

func TestDecodeBidRejects(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		kind    error
		wantMsg string
	}{
		{"empty", "", ErrMalformed, "empty data"},
		{"not json", "ping", ErrMalformed, "not JSON"},
		{"array", `[1,2]`, ErrMalformed, "JSON array, want an object"},
		{"null", `null`, ErrMalformed, "JSON null, want an object"},
		{"string", `"125"`, ErrMalformed, "JSON string, want an object"},
		{"two values", `{} {}`, ErrMalformed, "trailing data"},
		{"empty object", `{}`, ErrNoData, "no known field"},
		{"only unknown fields", `{"foo":1,"extendedTime":false}`, ErrNoData, "no known field"},
		{"only the product id", `{"productId":1}`, ErrNoData, "no known field"},
		{"price not a number", `{"currentBid":"abc"}`, ErrMalformed, `field "currentBid": "abc" is not a number`},
		{"negative price", `{"currentBid":-5}`, ErrMalformed, `field "currentBid": -5 is not a non-negative amount`},
		{"absurd price", `{"currentBid":1e15,"bidCount":16}`, ErrMalformed, `field "currentBid": 1e15 is not a plausible amount`},
		{"absurd next bid", `{"currentBid":5,"nextBid":"$20,000,000"}`, ErrMalformed, `field "nextBid"`},
		{"fractional count", `{"bidCount":1.5}`, ErrMalformed, `field "bidCount"`},
		{"bad product id", `{"productId":"abc","currentBid":1}`, ErrMalformed, `field "productId"`},
		{"bidder is an object", `{"lastBidder":{}}`, ErrMalformed, `field "lastBidder": an object is not a string`},
		{"negative time", `{"timeRemaining":-1}`, ErrMalformed, `field "timeRemaining"`},
		{"bad close time", `{"closeTime":"soon"}`, ErrMalformed, `field "closeTime"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := DecodeBid([]byte(tt.data))
			if err == nil {
				t.Fatalf("DecodeBid(%s) = %+v, want an error", tt.data, p)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q does not wrap %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if !p.Empty() {
				t.Errorf("a failed decode returned data: %+v", p)
			}
		})
	}
}

func TestDecodeBidErrorQuotesAShortExcerpt(t *testing.T) {
	data := `{"currentBid":"abc","pad":"` + strings.Repeat("x", 10000) + `"}`
	_, err := DecodeBid([]byte(data))
	if err == nil {
		t.Fatal("want an error")
	}
	if !strings.Contains(err.Error(), `{\"currentBid\":\"abc\"`) {
		t.Errorf("error %q does not quote the payload's start", err)
	}
	if len(err.Error()) > 300 {
		t.Errorf("error is %d bytes long, want a short excerpt", len(err.Error()))
	}
}

func TestDecodeClosed(t *testing.T) {
	t.Run("expected format", func(t *testing.T) {
		p, err := DecodeClosed(readSample(t, "nellis_sse_auction_closed.EXPECTED-UNVERIFIED.json"))
		if err != nil {
			t.Fatal(err)
		}
		if p.ProductID != 58040119 || *p.FinalBid != 125 || *p.CurrentBid != 125 || *p.Winner != "user123" ||
			!p.ClosedAt.Equal(time.Date(2025, 6, 29, 17, 30, 0, 0, time.UTC)) || !*p.IsClosed || *p.MarketStatus != "closed" {
			t.Errorf("decoded %+v", p)
		}
	})
	t.Run("predecessor fixture", func(t *testing.T) {
		p, err := DecodeClosed(readSample(t, "nellis_sse_auction_closed.unit-test-fixture.json"))
		if err != nil {
			t.Fatal(err)
		}
		if *p.FinalBid != 200 || *p.CurrentBid != 200 || *p.Winner != "winner123" || !*p.IsClosed {
			t.Errorf("decoded %+v", p)
		}
	})
	t.Run("empty object is a close", func(t *testing.T) {
		p, err := DecodeClosed([]byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if !*p.IsClosed || *p.MarketStatus != "closed" {
			t.Errorf("decoded %+v", p)
		}
		if p.FinalBid != nil || p.CurrentBid != nil || p.Winner != nil || p.ClosedAt != nil {
			t.Errorf("a close without a price claims one: %+v", p)
		}
	})
	t.Run("final_bid", func(t *testing.T) {
		p, err := DecodeClosed([]byte(`{"final_bid":"99.50"}`))
		if err != nil {
			t.Fatal(err)
		}
		if *p.FinalBid != 99.5 || *p.CurrentBid != 99.5 {
			t.Errorf("decoded %+v", p)
		}
	})
	t.Run("only the current price", func(t *testing.T) {
		p, err := DecodeClosed([]byte(`{"currentPrice":88,"bidCount":12}`))
		if err != nil {
			t.Fatal(err)
		}
		if *p.FinalBid != 88 || *p.CurrentBid != 88 || *p.BidCount != 12 {
			t.Errorf("decoded %+v", p)
		}
	})
	t.Run("final bid wins over current bid", func(t *testing.T) {
		p, err := DecodeClosed([]byte(`{"finalBid":90,"currentBid":88}`))
		if err != nil {
			t.Fatal(err)
		}
		if *p.FinalBid != 90 || *p.CurrentBid != 90 {
			t.Errorf("decoded %+v", p)
		}
	})
	for _, bad := range []string{``, `nope`, `[]`, `null`, `{"finalBid":"lots"}`, `{"closedAt":"yesterday"}`, `{"winner":{}}`} {
		if p, err := DecodeClosed([]byte(bad)); err == nil {
			t.Errorf("DecodeClosed(%s) = %+v, want an error", bad, p)
		}
	}
}

func TestParseConnected(t *testing.T) {
	for _, file := range []string{"nellis_sse_connected_message.observed.txt", "nellis_sse_connected.test-fixture.txt"} {
		sc := bufio.NewScanner(bytes.NewReader(readSample(t, file)))
		n := 0
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			n++
			id, ok := ParseConnected(line)
			if want := strings.TrimPrefix(line, "connected "); !ok || id != want {
				t.Errorf("ParseConnected(%q) = %q, %v; want %q", line, id, ok, want)
			}
		}
		if n == 0 {
			t.Errorf("%s has no message", file)
		}
	}
	tests := []struct {
		in     string
		wantID string
		wantOK bool
	}{
		{"connected e1177558-b227-4b52-9d06-dabac95b4794,0xc003538ee0-0xc003538f50\n",
			"e1177558-b227-4b52-9d06-dabac95b4794,0xc003538ee0-0xc003538f50", true},
		{"connected   session-123-456  ", "session-123-456", true},
		{"connected", "", true},
		{"ping", "", false},
		{"connectedness 1", "", false},
		{"", "", false},
		{`{"connected":true}`, "", false},
	}
	for _, tt := range tests {
		id, ok := ParseConnected(tt.in)
		if id != tt.wantID || ok != tt.wantOK {
			t.Errorf("ParseConnected(%q) = %q, %v; want %q, %v", tt.in, id, ok, tt.wantID, tt.wantOK)
		}
	}
}

func TestIsPing(t *testing.T) {
	sample := strings.TrimSpace(lastLine(string(readSample(t, "nellis_sse_ping.observed.txt"))))
	for _, in := range []string{sample, "ping", "ping\n", " ping "} {
		if !IsPing(in) {
			t.Errorf("IsPing(%q) = false", in)
		}
	}
	for _, in := range []string{"", "pong", "ping ping", "connected ping", `{"type":"ping"}`} {
		if IsPing(in) {
			t.Errorf("IsPing(%q) = true", in)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
