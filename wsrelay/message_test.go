package wsrelay

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nellis-edge/gateway/users"
)

func TestDecodeClientMessage(t *testing.T) {
	tests := []struct {
		name, in  string
		wantErr   string // "" for success
		wantReqID string
		check     func(*testing.T, *ClientMessage)
	}{
		{name: "not json", in: `{`, wantErr: "Invalid message format"},
		{name: "array", in: `[1]`, wantErr: "Invalid message format"},
		{name: "null", in: `null`, wantErr: "Invalid message format"},
		{name: "no type", in: `{"requestId":"r"}`, wantErr: "Invalid message format", wantReqID: `"r"`},
		{name: "type not string", in: `{"type":5}`, wantErr: "Invalid message format"},
		{name: "unknown type", in: `{"type":"explode","requestId":"req_9"}`, wantErr: `Unknown message type: "explode"`, wantReqID: `"req_9"`},
		{name: "numeric requestId kept", in: `{"type":"ping","requestId":17}`, wantReqID: `17`},
		{name: "object requestId dropped", in: `{"type":"ping","requestId":{"a":1}}`},
		{name: "path in auction id", in: `{"type":"stopMonitoring","auctionId":"../x","requestId":"r"}`,
			wantErr: "auctionId must be 1-100 characters of A-Z, a-z, 0-9, _ or -", wantReqID: `"r"`},
		{name: "auction id too long", in: `{"type":"subscribe","auctionId":"` + strings.Repeat("1", 101) + `"}`,
			wantErr: "auctionId must be 1-100 characters of A-Z, a-z, 0-9, _ or -"},
		{name: "missing auction id", in: `{"type":"subscribe"}`, wantErr: "auctionId is required"},
		{name: "numeric auction id tolerated", in: `{"type":"subscribe","auctionId":58040119}`,
			check: func(t *testing.T, m *ClientMessage) {
				if m.AuctionID != "58040119" {
					t.Errorf("auctionId %q", m.AuctionID)
				}
			}},
		{name: "maxBid zero", in: `{"type":"updateConfig","auctionId":"1","config":{"maxBid":0}}`, wantErr: "config.maxBid must be a number in (0, 999999]"},
		{name: "maxBid too big", in: `{"type":"updateConfig","auctionId":"1","config":{"maxBid":1000000}}`, wantErr: "config.maxBid must be a number in (0, 999999]"},
		{name: "maxBid as string", in: `{"type":"updateConfig","auctionId":"1","config":{"maxBid":"12.5"}}`,
			check: func(t *testing.T, m *ClientMessage) {
				if *m.Config.MaxBid != 12.5 {
					t.Errorf("maxBid %v", *m.Config.MaxBid)
				}
			}},
		{name: "bad strategy", in: `{"type":"updateConfig","auctionId":"1","config":{"strategy":"yolo"}}`, wantErr: "config.strategy must be auto or sniping"},
		{name: "older strategies accepted", in: `{"type":"updateConfig","auctionId":"1","config":{"strategy":"manual"}}`},
		{name: "increment too big", in: `{"type":"updateConfig","auctionId":"1","config":{"incrementAmount":1001}}`, wantErr: "config.incrementAmount must be a number in (0, 1000]"},
		{name: "autoBid not bool", in: `{"type":"updateConfig","auctionId":"1","config":{"autoBid":"yes"}}`, wantErr: "config.autoBid must be true or false"},
		{name: "snipeSeconds zero", in: `{"type":"updateConfig","auctionId":"1","config":{"snipeSeconds":0}}`, wantErr: "config.snipeSeconds must be a whole number of seconds in [1, 300]"},
		{name: "snipeSeconds too long", in: `{"type":"updateConfig","auctionId":"1","config":{"snipeSeconds":301}}`, wantErr: "config.snipeSeconds must be a whole number of seconds in [1, 300]"},
		{name: "snipeSeconds fraction", in: `{"type":"updateConfig","auctionId":"1","config":{"snipeSeconds":2.5}}`, wantErr: "config.snipeSeconds must be a whole number of seconds in [1, 300]"},
		{name: "snipeSeconds negative", in: `{"type":"updateConfig","auctionId":"1","config":{"snipeSeconds":-5}}`, wantErr: "config.snipeSeconds must be a whole number of seconds in [1, 300]"},
		{name: "snipeSeconds not a number", in: `{"type":"updateConfig","auctionId":"1","config":{"snipeSeconds":"soon"}}`, wantErr: "config.snipeSeconds must be a whole number of seconds in [1, 300]"},
		{name: "snipeSeconds bool", in: `{"type":"updateConfig","auctionId":"1","config":{"snipeSeconds":true}}`, wantErr: "config.snipeSeconds must be a whole number of seconds in [1, 300]"},
		{name: "snipeSeconds bounds and numeric string", in: `{"type":"startMonitoring","auctionId":"1","config":{"snipeSeconds":"300"}}`,
			check: func(t *testing.T, m *ClientMessage) {
				if m.Config.SnipeSeconds == nil || *m.Config.SnipeSeconds != 300 {
					t.Errorf("snipeSeconds %v", m.Config.SnipeSeconds)
				}
			}},
		{name: "snipeSeconds null left alone", in: `{"type":"updateConfig","auctionId":"1","config":{"snipeSeconds":null,"maxBid":1}}`,
			check: func(t *testing.T, m *ClientMessage) {
				if m.Config.SnipeSeconds != nil {
					t.Errorf("snipeSeconds %v", *m.Config.SnipeSeconds)
				}
			}},
		{name: "updateConfig without config", in: `{"type":"updateConfig","auctionId":"1"}`, wantErr: "config is required"},
		{name: "bad url", in: `{"type":"startMonitoring","auctionId":"1","metadata":{"url":"javascript:alert(1)"}}`, wantErr: "metadata.url must be an http or https URL"},
		{name: "long title accepted", in: `{"type":"startMonitoring","auctionId":"1","metadata":{"title":"` + strings.Repeat("t", 5000) + `","imageUrl":null}}`,
			check: func(t *testing.T, m *ClientMessage) {
				if len(m.Metadata.Title) != 5000 || m.Metadata.ImageURL != nil {
					t.Errorf("metadata %+v", m.Metadata)
				}
			}},
		{name: "bid amount negative", in: `{"type":"placeBid","auctionId":"1","amount":-1}`, wantErr: "amount must be a number in (0, 999999]"},
		{name: "token not string", in: `{"type":"authenticate","token":5}`, wantErr: "token must be a string"},
		{name: "resume", in: `{"type":"resume","auctions":{"58040119":{"epoch":"e","seq":3}},"requestId":"r"}`, wantReqID: `"r"`,
			check: func(t *testing.T, m *ClientMessage) {
				if m.Resume["58040119"] != (ResumePoint{"e", 3}) {
					t.Errorf("resume %v", m.Resume)
				}
			}},
		{name: "resume bad id", in: `{"type":"resume","auctions":{"../x":{"epoch":"e","seq":3}}}`,
			wantErr: "auctions: auction ids must be 1-100 characters of A-Z, a-z, 0-9, _ or -"},
		{name: "resume not object", in: `{"type":"resume","auctions":[1]}`, wantErr: `auctions must be an object of {"<auctionId>":{"epoch":"…","seq":n}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeClientMessage([]byte(tt.in))
			var pe *ProtocolError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && !errors.As(err, &pe):
				t.Fatalf("got %v, %v; want error %q", m, err, tt.wantErr)
			case tt.wantErr != "":
				if pe.Text != tt.wantErr || string(pe.RequestID) != tt.wantReqID {
					t.Fatalf("error %q requestId %s; want %q %s", pe.Text, pe.RequestID, tt.wantErr, tt.wantReqID)
				}
				return
			}
			if string(m.RequestID) != tt.wantReqID {
				t.Errorf("requestId %s, want %s", m.RequestID, tt.wantReqID)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func TestProductIDOf(t *testing.T) {
	tests := []struct {
		auctionID, url string
		want           int64
		ok             bool
	}{
		{"58040119", "", 58040119, true},
		{"abc", "https://www.nellisauction.com/p/SLUG-NAME/58040119", 58040119, true},
		{"abc", "https://www.nellisauction.com/p/SLUG/58040119/", 58040119, true},
		{"abc", "https://www.nellisauction.com/p/SLUG/", 0, false},
		{"abc", "", 0, false},
		{"0", "", 0, false},
		{"99999999999999999999", "", 0, false},
	}
	for _, tt := range tests {
		got, ok := productIDOf(tt.auctionID, tt.url)
		if got != tt.want || ok != tt.ok {
			t.Errorf("productIDOf(%q, %q) = %d, %v; want %d, %v", tt.auctionID, tt.url, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzDecodeClientMessage checks that no input panics and that whatever is
// accepted obeys the protocol's limits.
func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping"}`, `{"type":"authenticate","token":"t","requestId":"req_1"}`,
		`{"type":"startMonitoring","auctionId":"58040119","config":{"maxBid":45,"strategy":"sniping","incrementAmount":1,"autoBid":true},"metadata":{"title":"x","url":"https://www.nellisauction.com/p/x/1","imageUrl":null}}`,
		`{"type":"updateConfig","auctionId":"1","config":{"maxBid":"5"}}`, `{"type":"placeBid","auctionId":"1","amount":27}`,
		`{"type":"resume","auctions":{"1":{"epoch":"e","seq":1}}}`, `{"type":"subscribe","auctionId":1}`, `[`, `null`, `{"type":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeClientMessage(data)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Text == "" {
				t.Fatalf("error %v is not a ProtocolError", err)
			}
			if len(pe.RequestID) > 0 && !json.Valid(pe.RequestID) {
				t.Fatalf("requestId %q is not JSON", pe.RequestID)
			}
			return
		}
		if len(m.RequestID) > 0 && !json.Valid(m.RequestID) {
			t.Fatalf("requestId %q is not JSON", m.RequestID)
		}
		switch m.Type {
		case TypeStartMonitoring, TypeStopMonitoring, TypeUpdateConfig, TypePlaceBid, TypeSubscribe, TypeUnsubscribe:
			if !users.ValidAuctionID(m.AuctionID) {
				t.Fatalf("accepted auctionId %q", m.AuctionID)
			}
		}
		if c := m.Config; c != nil {
			if c.MaxBid != nil && (*c.MaxBid <= 0 || *c.MaxBid > maxBidLimit) {
				t.Fatalf("accepted maxBid %v", *c.MaxBid)
			}
			if c.IncrementAmount != nil && (*c.IncrementAmount <= 0 || *c.IncrementAmount > maxIncrement) {
				t.Fatalf("accepted incrementAmount %v", *c.IncrementAmount)
			}
			if c.Strategy != nil && !strategies[*c.Strategy] {
				t.Fatalf("accepted strategy %q", *c.Strategy)
			}
			if c.SnipeSeconds != nil && (*c.SnipeSeconds < 1 || *c.SnipeSeconds > maxSnipeSeconds) {
				t.Fatalf("accepted snipeSeconds %v", *c.SnipeSeconds)
			}
		}
		if m.Type == TypePlaceBid && (m.Amount <= 0 || m.Amount > maxBidLimit) {
			t.Fatalf("accepted amount %v", m.Amount)
		}
		for id := range m.Resume {
			if !users.ValidAuctionID(id) {
				t.Fatalf("accepted resume id %q", id)
			}
		}
	})
}
