package statusview

import (
	"strings"
	"testing"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/wsrelay"
)

func TestReady(t *testing.T) {
	fresh := hub.FeedStatus{Source: "sse"}
	stale := hub.FeedStatus{Source: "poll", Degraded: "snapshot failing"}
	started := &wsrelay.Stats{}
	for _, c := range []struct {
		name   string
		relay  *wsrelay.Stats
		feeds  []hub.FeedStatus
		share  float64
		ready  bool
		reason string
	}{
		{"not started", nil, nil, DefaultMaxStaleShare, false, "not started"},
		{"started, nothing watched", started, nil, DefaultMaxStaleShare, true, ""},
		{"all fresh", started, []hub.FeedStatus{fresh, fresh}, DefaultMaxStaleShare, true, ""},
		{"half stale is the limit", started, []hub.FeedStatus{fresh, stale}, DefaultMaxStaleShare, true, ""},
		{"over half stale", started, []hub.FeedStatus{fresh, stale, stale}, DefaultMaxStaleShare, false, "2 of 3 feeds stale (more than 50%)"},
		{"a stricter share", started, []hub.FeedStatus{fresh, fresh, fresh, stale}, 0.2, false, "1 of 4 feeds stale (more than 20%)"},
	} {
		v := Ready(NewReport(at, c.feeds, c.relay, Latency{}), c.share)
		if v.Ready != c.ready || !strings.Contains(v.Reason, c.reason) || (c.ready && v.Reason != "") {
			t.Errorf("%s: %+v, want ready=%v reason containing %q", c.name, v, c.ready, c.reason)
		}
		if v.Feeds != len(c.feeds) {
			t.Errorf("%s: feeds %d, want %d", c.name, v.Feeds, len(c.feeds))
		}
	}
}

// A node cut off from its cluster is not ready, whatever its feeds, and
// says why; the status table says so too.
func TestNotReadyStandalone(t *testing.T) {
	r := NewReport(at, []hub.FeedStatus{{Source: "sse", Role: "standalone"}}, &wsrelay.Stats{}, Latency{})
	if v := Ready(r, DefaultMaxStaleShare); !v.Ready {
		t.Fatalf("connected: %+v, want ready", v)
	}
	r.Standalone = true
	v := Ready(r, DefaultMaxStaleShare)
	if v.Ready || v.Reason != ReasonStandalone {
		t.Fatalf("standalone: %+v, want not ready: %q", v, ReasonStandalone)
	}
	if out := Render(Frame{Report: r}); !strings.Contains(out, "STANDALONE") {
		t.Fatalf("the status table does not show standalone:\n%s", out)
	}
}
