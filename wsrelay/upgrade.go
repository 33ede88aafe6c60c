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

	"github.com/nellis-edge/gateway/wsconn"
)

// connectedMessage is the greeting's fixed text (docs/protocol.md, Greeting).
const connectedMessage = "Connected to Nellis Auction Backend"

// ServeWS upgrades a request to the extension's socket. Everything that can
// refuse a client does so before the upgrade, with a plain HTTP status: a
// foreign origin (403), too many connections or unauthenticated sockets
// from one address (429), too many unauthenticated sockets in all or a
// relay shutting down (503).
func (r *Relay) ServeWS(w http.ResponseWriter, req *http.Request) {
	cfg := r.config()
	if !wsconn.IsUpgrade(req) {
		w.Header().Set("Upgrade", "websocket")
		r.refuse(w, http.StatusUpgradeRequired, "expected a WebSocket upgrade")
		return
	}
	if !originAllowed(cfg, req.Header.Get("Origin")) {
		r.refuse(w, http.StatusForbidden, "origin not allowed")
		return
	}
	ip := r.clientIP(req)
	addr := addressKey(ip)
	if !r.allowConnection(addr) {
		w.Header().Set("Retry-After", "60")
		r.refuse(w, http.StatusTooManyRequests, "too many connections from this address")
		return
	}
	// Reserve an unauthenticated slot; registration turns it into the
	// socket's. One address's share of the slots is refused with 429, as
	// its connection rate is: that client should slow down. The global cap
	// is the server's capacity, hence 503.
	r.mu.Lock()
	switch {
	case r.closing:
		r.mu.Unlock()
		r.refuse(w, http.StatusServiceUnavailable, "server shutting down")
		return
	case r.unauthedBy[addr] >= cfg.MaxUnauthenticatedPerAddress:
		r.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((time.Duration(cfg.AuthTimeout)+time.Second-1)/time.Second))))
		r.refuse(w, http.StatusTooManyRequests, "too many unauthenticated connections from this address")
		return
	case r.unauthed >= cfg.MaxUnauthenticated:
		r.mu.Unlock()
		r.refuse(w, http.StatusServiceUnavailable, "too many unauthenticated connections")
		return
	}
	r.addUnauthedLocked(addr, 1)
	// The upgrade in flight counts as the relay's until the socket is
	// registered: Shutdown, which sets closing under mu and then waits for
	// wg, so waits for it before it waits for the transport's sockets, and
	// never sees the transport's count grow from zero under its Wait.
	r.wg.Add(1)
	r.mu.Unlock()
	registered := r.wg.Done

	s, err := r.tr.Upgrade(w, req)
	if err != nil {
		// The upgrader has answered the client already.
		r.mu.Lock()
		r.addUnauthedLocked(addr, -1)
		r.mu.Unlock()
		registered()
		r.log().Debug("websocket upgrade failed", zap.Error(err))
		return
	}
	c := &conn{r: r, s: s, id: newClientID(r.now()), ip: ip, addr: addr}
	s.Attach(c)
	r.mu.Lock()
	if r.closing {
		r.addUnauthedLocked(addr, -1)
		r.mu.Unlock()
		s.Reject(websocket.CloseGoingAway, "server shutting down")
		registered()
		return
	}
	c.unauthedSince = time.Now().UnixNano()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	registered()
	r.hooksNow().connOpened()

	c.send("connected", struct {
		Type     string `json:"type"`
		ClientID string `json:"clientId"`
		Message  string `json:"message"`
	}{"connected", c.id, connectedMessage})
	// Until the socket authenticates it sees no one's auctions.
	c.send("monitoredAuctions", monitoredAuctionsMsg{Type: "monitoredAuctions", Auctions: json.RawMessage("[]")})
	s.Run()
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

// allowConnection applies the per-address connection rate.
func (r *Relay) allowConnection(addr string) bool {
	cfg := r.config()
	limit := rate.Every(time.Minute / time.Duration(cfg.ConnectionsPerMinute))
	now := r.now()
	r.ipMu.Lock()
	defer r.ipMu.Unlock()
	l := r.ipLimits[addr]
	if l == nil {
		l = rate.NewLimiter(limit, cfg.ConnectionsPerMinute)
		r.ipLimits[addr] = l
	} else if l.Limit() != limit || l.Burst() != cfg.ConnectionsPerMinute {
		l.SetLimitAt(now, limit)
		l.SetBurstAt(now, cfg.ConnectionsPerMinute)
	}
	return l.AllowN(now, 1)
}

// pruneIPLimits forgets addresses whose allowances are full again, so the
// tables hold only recent clients.
func (r *Relay) pruneIPLimits() {
	now := r.now()
	perMinute := r.config().AuthFailuresPerMinute
	r.ipMu.Lock()
	defer r.ipMu.Unlock()
	for addr, l := range r.ipLimits {
		if l.TokensAt(now) >= float64(l.Burst()) {
			delete(r.ipLimits, addr)
		}
	}
	for addr, b := range r.authBudgets {
		if b.full(now, float64(perMinute)/60, perMinute) {
			delete(r.authBudgets, addr)
		}
	}
}

// addUnauthedLocked counts n more (or fewer) unauthenticated sockets of
// addr; the caller holds r.mu.
func (r *Relay) addUnauthedLocked(addr string, n int) {
	r.unauthed += n
	if left := r.unauthedBy[addr] + n; left > 0 {
		r.unauthedBy[addr] = left
	} else {
		delete(r.unauthedBy, addr)
	}
}

// newClientID is client_<ms>_<32 hex>, the predecessor's format.
func newClientID(now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "client_" + strconv.FormatInt(now.UnixMilli(), 10) + "_" + hex.EncodeToString(b[:])
}
