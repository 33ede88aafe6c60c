package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMintedTokenSignsIn: `caddy nellis-token`, reading the key the way
// the gateway does (the Caddyfile's {env.NELLIS_JWT_KEY}), mints a token
// that signs a new user in through the extension's protocol, who then
// monitors a lot and gets its auctionState; REST takes the token too, and
// a token signed with another key is refused.
func TestMintedTokenSignsIn(t *testing.T) {
	t.Setenv("NELLIS_JWT_KEY", "an-e2e-hmac-key-that-is-long-enough-for-hs256")
	cfg := stopDemoConfig(t)
	const users = "auth_token demo-token"
	if !strings.Contains(cfg, users) {
		t.Fatalf("the demo config no longer contains %q", users)
	}
	cfg = strings.Replace(cfg, users, users+`
		jwt {
			hmac_key {env.NELLIS_JWT_KEY}
			issuer   https://auth.e2e.test
			audience nellis-edge
		}`, 1)
	startCaddyProcess(t, cfg)

	mint := func(env ...string) string {
		t.Helper()
		dir := t.TempDir()
		path := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := caddyCommand(t, dir, "nellis-token", "--config", path, "--adapter", "caddyfile", "--user", "ivy@example.com", "--ttl", "1h")
		cmd.Env = append(cmd.Env, env...)
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("caddy nellis-token: %v\n%s", err, stderr.String())
		}
		token := strings.TrimSpace(string(out))
		if strings.Count(token, ".") != 2 || strings.ContainsAny(token, " \n") {
			t.Fatalf("caddy nellis-token printed %q, want one JWT", out)
		}
		return token
	}
	token := mint()

	c := dialDemo(t)
	c.send(map[string]any{"type": "authenticate", "token": token, "requestId": "req_1"})
	if m := c.next("authenticated", 10*time.Second, nil); m["success"] != true {
		t.Fatalf("authenticate with the minted token: %v", m)
	}
	id, _ := firstOpenLot(t, stopSimURL)
	c.send(map[string]any{
		"type": "startMonitoring", "auctionId": fmt.Sprint(id), "requestId": "req_2",
		"config":   map[string]any{"maxBid": 5, "strategy": "sniping", "incrementAmount": 1, "autoBid": false},
		"metadata": map[string]any{"source": "e2e", "title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", id)},
	})
	c.next("auctionState", 10*time.Second, priceAtLeast(id, 0))

	req, _ := http.NewRequest(http.MethodGet, "http://"+stopGateway+"/api/status", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var status map[string]any
	err = json.NewDecoder(res.Body).Decode(&status)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || status["user"] != "ivy@example.com" || status["monitoredAuctions"] != 1.0 {
		t.Fatalf("REST status with the token: %d %v %v", res.StatusCode, status, err)
	}

	// Minted with another key, the same claims are refused, and the
	// answer says why.
	forged := mint("NELLIS_JWT_KEY=another-hmac-key-that-is-long-enough-for-hs256")
	d := dialDemo(t)
	d.send(map[string]any{"type": "authenticate", "token": forged, "requestId": "req_1"})
	if m := d.next("authenticated", 10*time.Second, nil); m["success"] == true || !strings.Contains(fmt.Sprint(m["error"]), "signature invalid") {
		t.Fatalf("a token signed with another key: %v", m)
	}
}
