package statusview

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/metrics"
	"github.com/nellis-edge/gateway/wsrelay"
)

var at = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// feeds are three products: one live on SSE, one polled after its breaker
// opened, one polled with failing snapshots.
func feeds() []hub.FeedStatus {
	return []hub.FeedStatus{
		{ProductID: 101, Source: "sse", Breaker: "closed", SessionID: "s-1", SinceLastByte: 0.2, SinceLastEvent: 0.9,
			Subscribers: 3, Epoch: "e1", Seq: 17, NextPoll: at.Add(28 * time.Second), Staleness: 0.2},
		{ProductID: 102, Source: "poll", Breaker: "open", SinceLastByte: -1, SinceLastEvent: -1,
			Subscribers: 1, Epoch: "e2", Seq: 4, NextPoll: at.Add(1500 * time.Millisecond), Staleness: 11, ExpectedStaleness: 12},
		{ProductID: 103, Source: "poll", Breaker: "open", SinceLastByte: -1, SinceLastEvent: -1,
			Subscribers: 0, Epoch: "e3", Seq: 1, Degraded: "snapshot failing", LastError: "status 500",
			LingerUntil: at.Add(12 * time.Second), Staleness: 40, ExpectedStaleness: 12},
	}
}

func TestNewReportTotals(t *testing.T) {
	relay := &wsrelay.Stats{Connections: 5, Authenticated: 4, Users: 2, MonitoredAuctions: 3, Products: 3, Parked: 2}
	r := NewReport(at, feeds(), relay, Latency{})
	want := Totals{
		Feeds: 3, OpenStreams: 1, Stale: 1, Subscribers: 4,
		Connections: 5, Authenticated: 4, Users: 2, MonitoredAuctions: 3, Parked: 2,
	}
	got := r.Totals
	got.FeedsBySource, got.Breakers = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("totals\n got %+v\nwant %+v", got, want)
	}
	if r.Totals.FeedsBySource["sse"] != 1 || r.Totals.FeedsBySource["poll"] != 2 {
		t.Errorf("feeds by source %v", r.Totals.FeedsBySource)
	}
	if r.Totals.Breakers["open"] != 2 || r.Totals.Breakers["closed"] != 1 {
		t.Errorf("breakers %v", r.Totals.Breakers)
	}
	if !r.Started {
		t.Error("a report with relay stats is not started")
	}
}

func TestNewReportListsQuarantinedRecords(t *testing.T) {
	q := wsrelay.QuarantinedRecord{User: "alice", Key: "nellis/quarantine/alice-1.json", At: at, Reason: "not JSON (at byte 12)"}
	r := NewReport(at, feeds(), &wsrelay.Stats{Quarantined: []wsrelay.QuarantinedRecord{q}}, Latency{})
	if len(r.QuarantinedRecords) != 1 || r.QuarantinedRecords[0] != q {
		t.Errorf("quarantined records %+v", r.QuarantinedRecords)
	}
}

func TestNewReportCountsStoredUsers(t *testing.T) {
	stored := 1200
	r := NewReport(at, feeds(), &wsrelay.Stats{Users: 3, StoredUsers: &stored}, Latency{})
	if r.Totals.StoredUsers == nil || *r.Totals.StoredUsers != 1200 {
		t.Fatalf("stored users %v", r.Totals.StoredUsers)
	}
	if out := Render(Frame{Address: "localhost:2019", Report: r}); !strings.Contains(out, "users 3 monitoring 0 auctions · 1200 users stored") {
		t.Errorf("the view does not show the stored users:\n%s", out)
	}
}

func TestNewReportBeforeStart(t *testing.T) {
	r := NewReport(at, nil, nil, Latency{})
	if r.Started || r.Totals.Connections != 0 {
		t.Errorf("report before start: %+v", r)
	}
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	// Consumers iterate feeds: an empty list, never null.
	if !strings.Contains(string(body), `"feeds":[]`) {
		t.Errorf("no feeds encode as %s", body)
	}
}

// The report survives JSON both ways: the command decodes what the admin
// API encodes, latency histogram included.
func TestReportJSONRoundTrip(t *testing.T) {
	m := metrics.New()
	m.RelayHooks().DeliveryLatency(300 * time.Microsecond)
	in := NewReport(at, feeds(), &wsrelay.Stats{Connections: 1}, Latency{Delivery: m.DeliveryLatency(), Processing: m.RecentProcessing()})
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Report
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if Render(Frame{Address: "a", Report: out}) != Render(Frame{Address: "a", Report: in}) {
		t.Errorf("decoded report renders differently:\n%s", body)
	}
	for _, key := range []string{`"product_id":101`, `"source":"sse"`, `"breaker":"open"`, `"session_id":"s-1"`,
		`"since_last_byte_s":0.2`, `"since_last_event_s":0.9`, `"subscribers":3`, `"epoch":"e1"`, `"seq":17`,
		`"next_poll":"2026-11-27T08:00:28Z"`, `"open_streams":1`, `"feeds_by_source":{`, `"delivery":{"count":1`} {
		if !strings.Contains(string(body), key) {
			t.Errorf("JSON lacks %s:\n%s", key, body)
		}
	}
}

func TestStale(t *testing.T) {
	for _, c := range []struct {
		name string
		f    hub.FeedStatus
		want bool
	}{
		{"healthy stream", hub.FeedStatus{Source: "sse"}, false},
		{"stream fine, safety-net snapshots failing", hub.FeedStatus{Source: "sse", Degraded: "snapshot failing"}, false},
		{"polled, snapshots fine", hub.FeedStatus{Source: "poll"}, false},
		{"polled, snapshots failing", hub.FeedStatus{Source: "poll", Degraded: "snapshot failing"}, true},
	} {
		if got := Stale(c.f); got != c.want {
			t.Errorf("%s: Stale = %v, want %v", c.name, got, c.want)
		}
	}
}
