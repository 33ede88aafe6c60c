package wsrelay

import (
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/wsconn"
)

// sweep is the relay's one timer goroutine: it pings silent sockets, sends
// the application heartbeat that keeps a Chrome MV3 service worker alive
// to sockets that have had no other message for a while, closes sockets
// past their sign-in or message deadline or whose signed token expired
// (closeExpired), and prunes the per-address
// limits. One goroutine for all sockets keeps an idle
// socket free of timers of its own.
func (r *Relay) sweep() {
	defer r.wg.Done()
	defer r.recoverPanic("sweeper")
	now := time.Now()
	nextPing, nextBeat, nextDue := now, now, now
	reschedule := func() {
		cfg := r.config()
		now := time.Now()
		nextPing = now.Add(time.Duration(cfg.PingInterval / pingChecks))
		nextBeat = now.Add(time.Duration(cfg.HeartbeatInterval / beatChecks))
		nextDue = now.Add(dueEvery(cfg))
	}
	reschedule()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := earliest(nextPing, earliest(nextBeat, nextDue))
		expiry := r.nextExpiry()
		if !expiry.IsZero() {
			next = earliest(next, expiry)
		}
		timer.Reset(time.Until(next))
		select {
		case <-r.ctx.Done():
			return
		case <-r.reconfig:
			reschedule()
			continue
		case <-r.expiry.wake:
			continue // an earlier expiry: wait for it
		case <-timer.C:
		}
		now := time.Now()
		cfg := r.config()
		if !expiry.IsZero() && !now.Before(expiry) {
			r.closeExpired(now)
		}
		if !now.Before(nextBeat) {
			nextBeat = now.Add(time.Duration(cfg.HeartbeatInterval / beatChecks))
			r.heartbeat(now.Add(time.Duration(-cfg.HeartbeatInterval + cfg.HeartbeatInterval/beatChecks)))
			r.pruneIPLimits()
		}
		if !now.Before(nextPing) {
			nextPing = now.Add(time.Duration(cfg.PingInterval / pingChecks))
			r.pingSilent(now.Add(time.Duration(-cfg.PingInterval)), now.Add(time.Duration(-2*cfg.PingInterval)))
		}
		if !now.Before(nextDue) {
			nextDue = now.Add(dueEvery(cfg))
			r.closeOverdue(now.Add(time.Duration(-cfg.AuthTimeout)), now.Add(time.Duration(-cfg.MessageTimeout)))
		}
	}
}

// dueChecks is how often per AuthTimeout (or MessageTimeout, whichever is
// shorter) the sweeper looks for sockets past their deadline: one is
// closed at most a quarter of it late.
const dueChecks = 4

func dueEvery(cfg *Config) time.Duration {
	return time.Duration(min(cfg.AuthTimeout, cfg.MessageTimeout) / dueChecks)
}

// closeOverdue closes, with 1008 and a reason the extension logs, every
// socket that has been unauthenticated since before authSince and every
// socket reading a message begun before messageSince. Parked sockets
// included: no read deadline can fire for them, and the close starts
// their reader. Deadlines use the real clock: they act on I/O.
func (r *Relay) closeOverdue(authSince, messageSince time.Time) {
	auth, msg := authSince.UnixNano(), messageSince.UnixNano()
	r.mu.RLock()
	defer r.mu.RUnlock()
	for c := range r.conns {
		if c.user == nil && c.unauthedSince <= auth {
			c.requestClose(websocket.ClosePolicyViolation, reasonAuthTimeout)
			continue
		}
		if began := c.s.MessageStart(); !began.IsZero() && began.UnixNano() <= msg {
			c.requestClose(websocket.ClosePolicyViolation, reasonMessageTimeout)
		}
	}
}

// pingChecks is how often per ping interval the sweeper looks for silent
// sockets: a socket is pinged within a quarter interval of falling silent
// for one, which leaves it at least three quarters of one to answer before
// its read deadline (two intervals after its last frame).
const pingChecks = 4

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// heartbeatMessage is {"type":"heartbeat","ts":<ms>}; the extension ignores
// types it does not know, but receiving it keeps its service worker alive.
func heartbeatMessage(now time.Time) wsconn.Message {
	return wsconn.Message{Frame: wsconn.TextFrame([]byte(`{"type":"heartbeat","ts":` + strconv.FormatInt(now.UnixMilli(), 10) + `}`)),
		Kind: "heartbeat", Key: wsconn.Key{Class: kindHeartbeat}}
}

// pingSilent pings the sockets that have sent nothing since silentSince
// (the extension sends a message every 25 s, so it is seldom pinged), and
// closes a parked socket that has sent nothing since deadSince: its read
// deadline cannot fire while no reader runs.
func (r *Relay) pingSilent(silentSince, deadSince time.Time) {
	for _, c := range r.connsNow() {
		switch last := c.s.LastRead(); {
		case !last.After(deadSince) && c.s.Parked():
			c.closeSocket()
		case !last.After(silentSince):
			c.s.Ping()
		}
	}
}

// beatChecks is how often per heartbeat interval the sweeper looks for
// sockets due a heartbeat: one that has had no message for three quarters
// of an interval gets one, so no socket goes a whole interval without a
// message, and a socket that receives prices gets no heartbeat at all.
const beatChecks = 4

// heartbeat sends the heartbeat to every socket that has had no message
// since quietSince. Any message keeps a service worker alive; at 10,000
// sockets following prices, a heartbeat to each every 15 s would be 10,000
// writes for nothing.
func (r *Relay) heartbeat(quietSince time.Time) {
	m := heartbeatMessage(r.now())
	for _, c := range r.connsNow() {
		if !c.s.LastSent().After(quietSince) {
			m.Frame.Retain()
			c.enqueue(m)
		}
	}
	m.Frame.Release()
}
