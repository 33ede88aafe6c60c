package bidding

import (
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

func TestHistoryKeepsTheLastHundredInOrder(t *testing.T) {
	var h history
	for i := range HistorySize + 5 {
		h.add(Record{Amount: i})
	}
	got := h.list()
	if len(got) != HistorySize || got[0].Amount != 5 || got[HistorySize-1].Amount != HistorySize+4 {
		t.Fatalf("kept %d records, first %d last %d", len(got), got[0].Amount, got[len(got)-1].Amount)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Amount != got[i-1].Amount+1 {
			t.Fatalf("out of order at %d", i)
		}
	}
	got[0].Amount = -1
	if h.list()[0].Amount == -1 {
		t.Error("list shares the ring")
	}
}

func TestRateWindowIsSliding(t *testing.T) {
	var w rateWindow
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		now := t0.Add(time.Duration(i) * 10 * time.Second)
		if ok, _ := w.allow(now, 3); !ok {
			t.Fatalf("bid %d refused", i)
		}
		w.record(now)
	}
	ok, retry := w.allow(t0.Add(30*time.Second), 3)
	if ok || !retry.Equal(t0.Add(time.Minute)) {
		t.Fatalf("fourth bid: ok=%v retry at %v", ok, retry)
	}
	if ok, _ := w.allow(t0.Add(time.Minute), 3); !ok {
		t.Error("a slot did not free after a minute")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := map[string]Config{
		"negative rate":     {BidsPerMinute: -1},
		"negative buffer":   {Buffer: -1},
		"huge buffer":       {Buffer: maxBuffer + 1},
		"sub-second window": {SnipeWindow: settings.Duration(500 * time.Millisecond)},
		"negative window":   {SnipeWindow: settings.Duration(-time.Second)},
		"negative timeout":  {BidTimeout: settings.Duration(-time.Second)},
	}
	for name, cfg := range bad {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := New(cfg, Options{Placer: nopPlacer{}}); err == nil || !strings.HasPrefix(err.Error(), "bidding: ") {
			t.Errorf("%s: New error %v", name, err)
		}
	}
	d := Config{}.withDefaults()
	if d.BidsPerMinute != DefaultBidsPerMinute || time.Duration(d.SnipeWindow) != DefaultSnipeWindow || time.Duration(d.BidTimeout) != DefaultBidTimeout || d.Off || d.DryRun {
		t.Errorf("defaults %+v", d)
	}
	if _, err := New(Config{}, Options{}); err == nil {
		t.Error("no Placer accepted")
	}
	if _, err := New(Config{}, Options{Placer: nopPlacer{}, Directory: &fakeDirectory{}}); err == nil {
		t.Error("a Directory without a Feed accepted")
	}
}
