package metrics

import (
	"testing"
	"time"
)

func TestRelayHooksTrackConnections(t *testing.T) {
	m := New()
	r := m.RelayHooks()
	for range 3 {
		r.ConnOpened()
	}
	r.ConnClosed(1000)
	r.ConnClosed(4008) // the relay's slow-client code
	r.Authenticated("alice")
	r.Authenticated("alice")
	r.UpgradeRefused(403)
	r.UpgradeRefused(403)
	r.UpgradeRefused(429)

	expectMetrics(t, registered(t, m), `
# HELP nellis_ws_connections_open WebSocket connections open now.
# TYPE nellis_ws_connections_open gauge
nellis_ws_connections_open 1
# HELP nellis_ws_connections_opened_total WebSocket connections accepted.
# TYPE nellis_ws_connections_opened_total counter
nellis_ws_connections_opened_total 3
# HELP nellis_ws_connections_closed_total WebSocket connections closed, by close code: the code for 1000-1015, else its class (3xxx, 4xxx) or other.
# TYPE nellis_ws_connections_closed_total counter
nellis_ws_connections_closed_total{code="1000"} 1
nellis_ws_connections_closed_total{code="1001"} 0
nellis_ws_connections_closed_total{code="1006"} 0
nellis_ws_connections_closed_total{code="1008"} 0
nellis_ws_connections_closed_total{code="1009"} 0
nellis_ws_connections_closed_total{code="1011"} 0
nellis_ws_connections_closed_total{code="4xxx"} 1
# HELP nellis_ws_authentications_total Successful WebSocket authentications.
# TYPE nellis_ws_authentications_total counter
nellis_ws_authentications_total 2
# HELP nellis_ws_upgrade_refusals_total WebSocket upgrade requests refused, by HTTP status.
# TYPE nellis_ws_upgrade_refusals_total counter
nellis_ws_upgrade_refusals_total{status="403"} 2
nellis_ws_upgrade_refusals_total{status="429"} 1
`, "nellis_ws_connections_open", "nellis_ws_connections_opened_total", "nellis_ws_connections_closed_total",
		"nellis_ws_authentications_total", "nellis_ws_upgrade_refusals_total")
}

func TestRelayHooksCountMessagesByBoundedType(t *testing.T) {
	m := New()
	r := m.RelayHooks()
	r.MessageIn("authenticate")
	r.MessageIn("placeBid")
	r.MessageIn("placeBid")
	r.MessageIn("invalid")
	r.MessageIn("dropTables") // a client can send any type: it must not become a series
	r.MessageOut("auctionState")
	r.MessageOut("auctionState")
	r.MessageOut("heartbeat")
	r.MessageOut("somethingNew")

	in, out := m.wsMessagesIn, m.wsMessagesOut
	for typ, want := range map[string]float64{"authenticate": 1, "placeBid": 2, "invalid": 1, "other": 1, "ping": 0} {
		if got := value(t, in.WithLabelValues(typ)); got != want {
			t.Errorf("messages received of type %s = %v, want %v", typ, got, want)
		}
	}
	for typ, want := range map[string]float64{"auctionState": 2, "heartbeat": 1, "other": 1, "pong": 0} {
		if got := value(t, out.WithLabelValues(typ)); got != want {
			t.Errorf("messages sent of type %s = %v, want %v", typ, got, want)
		}
	}
	if got, want := countSeries(t, m, "nellis_ws_messages_received_total"), len(clientMessageTypes); got != want {
		t.Errorf("messages received has %d series, want the %d known types", got, want)
	}
}

func TestRelayHooksCountSlowClientsAndLostFrames(t *testing.T) {
	m := New()
	r := m.RelayHooks()
	r.Coalesced()
	r.Coalesced()
	r.Dropped("queue full")
	r.SlowClosed()
	r.Dropped("flood")
	r.Dropped("rate")
	r.Dropped("rate")
	r.Dropped("cosmic ray")

	expectMetrics(t, registered(t, m), `
# HELP nellis_ws_coalesced_frames_total Queued frames replaced by a newer frame for the same auction before they were written.
# TYPE nellis_ws_coalesced_frames_total counter
nellis_ws_coalesced_frames_total 2
# HELP nellis_ws_dropped_frames_total Frames dropped, by reason: queue_full (outbound, slow client), flood and rate (inbound, over the client's limit).
# TYPE nellis_ws_dropped_frames_total counter
nellis_ws_dropped_frames_total{reason="flood"} 1
nellis_ws_dropped_frames_total{reason="other"} 1
nellis_ws_dropped_frames_total{reason="queue_full"} 1
nellis_ws_dropped_frames_total{reason="rate"} 2
# HELP nellis_ws_slow_client_closes_total WebSocket connections closed because the client stopped reading.
# TYPE nellis_ws_slow_client_closes_total counter
nellis_ws_slow_client_closes_total 1
`, "nellis_ws_coalesced_frames_total", "nellis_ws_dropped_frames_total", "nellis_ws_slow_client_closes_total")
}

// The delivery latency histogram must tell a 0.2 ms delivery from a
// 0.7 ms one and from a 20 ms one.
func TestRelayHooksBucketDeliveryLatencyFinely(t *testing.T) {
	m := New()
	r := m.RelayHooks()
	r.DeliveryLatency(200 * time.Microsecond)
	r.DeliveryLatency(700 * time.Microsecond)
	r.DeliveryLatency(20 * time.Millisecond)
	r.DeliveryLatency(-time.Millisecond) // clock stepped back: zero, not negative

	expectHistogram(t, m.deliveryLatency, 4, 0.0209, map[float64]uint64{
		0.0001: 1, 0.00025: 2, 0.0005: 2, 0.001: 3, 0.01: 3, 0.025: 4, 5: 4,
	})
}

func TestRelayHooksCountQuarantinedRecords(t *testing.T) {
	m := New()
	r := m.RelayHooks()
	r.RecordQuarantined()

	expectMetrics(t, registered(t, m), `
# HELP nellis_user_records_quarantined_total Users' stored records that could not be read and were set aside under nellis/quarantine/; each such user started empty.
# TYPE nellis_user_records_quarantined_total counter
nellis_user_records_quarantined_total 1
`, "nellis_user_records_quarantined_total")
}

func TestRelayHooksReportStoredUsers(t *testing.T) {
	m := New()
	m.RelayHooks().UsersStored(1234)

	expectMetrics(t, registered(t, m), `
# HELP nellis_users_stored User records in storage, counted by the user_retention sweep (at start, then daily).
# TYPE nellis_users_stored gauge
nellis_users_stored 1234
`, "nellis_users_stored")
}
