package wsrelay

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// connectedMessage is the greeting's fixed text (docs/protocol.md, Greeting).
const connectedMessage = "Connected to Nellis Auction Backend"

// ServeWS upgrades a request to the extension's socket. Everything that can
// refuse a client does so before the upgrade, with a plain HTTP status: a
// foreign origin (403), too many connections from one IP (429), too many
// unauthenticated sockets or a relay shutting down (503).
func (r *Relay) ServeWS(w http.ResponseWriter, req *http.Request) {
	cfg := r.config()
	if !websocket.IsWebSocketUpgrade(req) {
		w.Header().Set("Upgrade", "websocket")
		r.refuse(w, http.StatusUpgradeRequired, "expected a WebSocket upgrade")
		return
	}
	if !originAllowed(cfg, req.Header.Get("Origin")) {
		r.refuse(w, http.StatusForbidden, "origin not allowed")
		return
	}
	ip := r.clientIP(req)
	if !r.allowConnection(ip) {
		w.Header().Set("Retry-After", "60")
		r.refuse(w, http.StatusTooManyRequests, "too many connections from this address")
		return
	}
	// Reserve an unauthenticated slot; registration turns it into the socket's.
	r.mu.Lock()
	switch {
	case r.closing:
		r.mu.Unlock()
		r.refuse(w, http.StatusServiceUnavailable, "server shutting down")
		return
	case r.unauthed >= cfg.MaxUnauthenticated:
		r.mu.Unlock()
		r.refuse(w, http.StatusServiceUnavailable, "too many unauthenticated connections")
		return
	}
	r.unauthed++
	r.mu.Unlock()

	hw, hj := hijackable(w, readBufferSize, r.unwrap)
	ws, err := r.upgrader.Upgrade(hw, req, nil)
	if err != nil {
		// The upgrader has answered the client already.
		r.mu.Lock()
		r.unauthed--
		r.mu.Unlock()
		r.log().Debug("websocket upgrade failed", zap.Error(err))
		return
	}
	c := &conn{r: r, ws: ws, hj: hj, id: newClientID(r.now()), ip: ip}
	r.mu.Lock()
	if r.closing {
		r.unauthed--
		r.mu.Unlock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(closeGrace))
		ws.Close()
		return
	}
	r.conns[c] = struct{}{}
	r.wg.Add(1) // the reader's, held until teardown
	r.mu.Unlock()
	r.hooksNow().connOpened()

	c.applyLimits()
	c.setControlHandlers()
	c.send("connected", struct {
		Type     string `json:"type"`
		ClientID string `json:"clientId"`
		Message  string `json:"message"`
	}{"connected", c.id, connectedMessage})
	// Until the socket authenticates it sees no one's auctions.
	c.send("monitoredAuctions", monitoredAuctionsMsg{Type: "monitoredAuctions", Auctions: json.RawMessage("[]")})
	go c.readLoop(false)
}

func (r *Relay) refuse(w http.ResponseWriter, status int, text string) {
	r.hooksNow().upgradeRefused(status)
	writeJSON(w, status, apiError{Error: text})
}

// originAllowed: no Origin header is a non-browser client, which still
// needs a token; a browser's origin must be listed exactly.
func originAllowed(cfg *Config, origin string) bool {
	if origin == "" {
		return true
	}
	return slices.Contains(cfg.AllowedOrigins, "*") || slices.Contains(cfg.AllowedOrigins, origin)
}

// allowConnection applies the per-IP connection rate.
func (r *Relay) allowConnection(ip string) bool {
	cfg := r.config()
	limit := rate.Every(time.Minute / time.Duration(cfg.ConnectionsPerMinute))
	now := r.now()
	r.ipMu.Lock()
	defer r.ipMu.Unlock()
	l := r.ipLimits[ip]
	if l == nil {
		l = rate.NewLimiter(limit, cfg.ConnectionsPerMinute)
		r.ipLimits[ip] = l
	} else if l.Limit() != limit || l.Burst() != cfg.ConnectionsPerMinute {
		l.SetLimitAt(now, limit)
		l.SetBurstAt(now, cfg.ConnectionsPerMinute)
	}
	return l.AllowN(now, 1)
}

// pruneIPLimits forgets addresses whose allowance is full again, so the
// table holds only recent clients.
func (r *Relay) pruneIPLimits() {
	now := r.now()
	r.ipMu.Lock()
	defer r.ipMu.Unlock()
	for ip, l := range r.ipLimits {
		if l.TokensAt(now) >= float64(l.Burst()) {
			delete(r.ipLimits, ip)
		}
	}
}

// newClientID is client_<ms>_<32 hex>, the predecessor's format.
func newClientID(now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "client_" + strconv.FormatInt(now.UnixMilli(), 10) + "_" + hex.EncodeToString(b[:])
}
