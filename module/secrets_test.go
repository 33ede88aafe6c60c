package module

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/nellis"
	"github.com/nellis-edge/gateway/tokens"
)

// TestNoSecretInLogs runs the whole gateway at debug level while a user
// authenticates (a right and a wrong token), syncs cookies, and bids (one
// accepted, one refused), and a signed-token user signs in (a valid and an
// expired token), and reads every line it logged: neither the tokens, the
// jwt hmac_key nor the cookies appear, in messages or in fields.
func TestNoSecretInLogs(t *testing.T) {
	const (
		token  = "tok-SECRET-4f1c9a"
		wrong  = "tok-WRONG-77ab02"
		cookie = "sim_user=alice; session=COOKIE-SECRET-91d2"
		jwtKey = "JWT-KEY-SECRET-0123456789abcdef0123456789"
	)
	sim, simURL := newSimulator(t)
	lot := sim.Auctions()[2]

	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	app := &App{SSEEndpoint: simURL, APIEndpoint: simURL, Users: []User{{Name: "alice", Token: token}},
		JWT: &tokens.Config{HMACKey: jwtKey}}
	signed, err := tokens.Mint(*app.JWT, "jwt-user", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, err := tokens.Mint(*app.JWT, "jwt-user", time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	app.logger = logger
	client, err := nellis.NewClient(app.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	s, err := newShared(logger, client, app.hubConfig(), app.biddingConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destruct()
	storage := memstorage.New()
	if err := s.start(context.Background(), logger, client, app.hubConfig(), app.relayConfig(nil), app.biddingConfig(), storage); err != nil {
		t.Fatal(err)
	}
	relay := s.relay
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", relay.ServeWS)
	mux.Handle("/api/", relay.APIHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dial := func() *websocket.Conn {
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	await := func(conn *websocket.Conn, typ string) map[string]any {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			var m map[string]any
			if err := conn.ReadJSON(&m); err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			if m["type"] == typ {
				return m
			}
		}
	}

	bad := dial()
	defer bad.Close()
	_ = bad.WriteJSON(map[string]any{"type": "authenticate", "token": wrong, "requestId": "r0"})
	if m := await(bad, "authenticated"); m["success"] != false {
		t.Fatalf("wrong token accepted: %v", m)
	}

	for _, jwt := range []struct {
		token string
		ok    bool
	}{{expired, false}, {signed, true}} {
		conn := dial()
		_ = conn.WriteJSON(map[string]any{"type": "authenticate", "token": jwt.token, "requestId": "j"})
		if m := await(conn, "authenticated"); m["success"] != jwt.ok {
			t.Fatalf("signed token (valid: %v): %v", jwt.ok, m)
		}
		conn.Close()
	}

	ws := dial()
	defer ws.Close()
	_ = ws.WriteJSON(map[string]any{"type": "authenticate", "token": token, "requestId": "r1"})
	await(ws, "authenticated")
	_ = ws.WriteJSON(map[string]any{"type": "startMonitoring", "auctionId": itoa(lot.ID), "requestId": "r2",
		"config": map[string]any{"maxBid": 1000, "strategy": "auto", "autoBid": false}})
	await(ws, "response")

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/auth", strings.NewReader(`{"cookies":"`+cookie+`"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("cookie sync: %s", res.Status)
	}

	_ = ws.WriteJSON(map[string]any{"type": "placeBid", "auctionId": itoa(lot.ID), "amount": lot.NextBid, "requestId": "r3"})
	if m := await(ws, "bidResult"); m["success"] != true {
		t.Fatalf("bid: %v", m)
	}
	_ = ws.WriteJSON(map[string]any{"type": "placeBid", "auctionId": itoa(lot.ID), "amount": 1, "requestId": "r4"})
	if m := await(ws, "bidResult"); m["success"] != false {
		t.Fatalf("a too-low bid succeeded: %v", m)
	}

	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the test would prove nothing")
	}
	for _, entry := range logs.All() {
		line, _ := json.Marshal(map[string]any{"msg": entry.Message, "fields": entry.ContextMap()})
		for _, secret := range []string{token, wrong, "COOKIE-SECRET", "session=", jwtKey, signed, expired,
			signed[strings.LastIndex(signed, ".")+1:]} {
			if strings.Contains(string(line), secret) {
				t.Errorf("a log line shows a secret (%s): %s", secret, line)
			}
		}
	}
	for _, e := range logs.All() {
		t.Logf("%s %v", e.Message, e.ContextMap())
	}
}
