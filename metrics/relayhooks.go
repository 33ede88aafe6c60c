package metrics

import (
	"time"

	"github.com/nellis-edge/gateway/wsrelay"
)

// RelayHooks returns the relay callbacks that feed these metrics. The user
// name Authenticated receives is never used as a label.
func (m *Metrics) RelayHooks() wsrelay.Hooks {
	return wsrelay.Hooks{
		ConnOpened:      m.connOpened,
		ConnClosed:      m.connClosed,
		Authenticated:   m.authenticated,
		MessageIn:       m.messageIn,
		MessageOut:      m.messageOut,
		Coalesced:       m.wsCoalesced.Inc,
		Dropped:         m.dropped,
		SlowClosed:      m.wsSlowCloses.Inc,
		DeliveryLatency: m.delivered,
		UpgradeRefused:  m.upgradeRefused,

		RecordQuarantined: m.quarantined.Inc,
		UsersStored:       func(n int) { m.usersStored.Set(float64(n)) },
	}
}

func (m *Metrics) connOpened() {
	m.wsOpened.Inc()
	m.wsOpen.Inc()
}

func (m *Metrics) connClosed(code int) {
	m.wsOpen.Dec()
	m.wsClosed.WithLabelValues(closeCodeLabel(code)).Inc()
}

func (m *Metrics) authenticated(string) {
	m.wsAuthentications.Inc()
}

func (m *Metrics) messageIn(msgType string) {
	m.wsMessagesIn.inc(msgType)
}

func (m *Metrics) messageOut(msgType string) {
	m.wsMessagesOut.inc(msgType)
}

func (m *Metrics) dropped(reason string) {
	m.wsDropped.inc(dropReasonLabel(reason))
}

// delivered observes one change's latency to a socket write; a clock step
// backwards counts as zero.
func (m *Metrics) delivered(d time.Duration) {
	m.deliveryLatency.Observe(max(d, 0).Seconds())
}

func (m *Metrics) upgradeRefused(status int) {
	m.wsUpgradeRefusals.WithLabelValues(httpStatusLabel(status)).Inc()
}
