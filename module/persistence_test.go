package module

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gatewayAPI calls the gateway's REST API as the user of token.
func gatewayAPI(t *testing.T, method, path, token, body string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1:9080"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s, %v", method, path, res.Status, err)
	}
	return out
}

// TestCookiesSurviveARestartWithoutTheKey: the gateway restarted without
// its cookie_key keeps the user's sealed cookies in storage through the
// saves it makes meanwhile, and restarted with the key has them back.
func TestCookiesSurviveARestartWithoutTheKey(t *testing.T) {
	sim, simURL := newSimulator(t)
	storage := t.TempDir()
	withKey := "cookie_key " + strings.Repeat("5a", 32)
	lot := sim.Auctions()[0]

	startGatewayIn(t, sim, simURL, simURL, storage, withKey)
	gatewayAPI(t, http.MethodPost, "/api/auth", testToken, `{"cookies":"__session=synced-before"}`)

	startGatewayIn(t, sim, simURL, simURL, storage, "")
	if st := gatewayAPI(t, http.MethodGet, "/api/status", testToken, ""); st["cookiesSynced"] != false {
		t.Fatalf("cookies opened without the key: %v", st)
	}
	w := watch(t, lot.ID) // a change to the user's data, saved without the key
	w.await(t, float64(lot.CurrentBid), time.Now().Add(5*time.Second))
	w.conn.Close()

	startGatewayIn(t, sim, simURL, simURL, storage, withKey)
	st := gatewayAPI(t, http.MethodGet, "/api/status", testToken, "")
	if st["cookiesSynced"] != true {
		t.Errorf("cookies lost by a restart without the key: %v", st)
	}
	if list := gatewayAPI(t, http.MethodGet, "/api/auctions", testToken, "")["auctions"].([]any); len(list) != 1 {
		t.Errorf("the auction monitored without the key was not kept: %v", list)
	}
}

// TestCorruptRecordIsSetAsideAtStart: one user's truncated record neither
// stops the gateway nor touches anyone else; that user starts empty, and
// the record is reported on the admin API and in the metrics.
func TestCorruptRecordIsSetAsideAtStart(t *testing.T) {
	sim, simURL := newSimulator(t)
	storage := t.TempDir()
	users := filepath.Join(storage, "nellis", "users")
	if err := os.MkdirAll(users, 0o700); err != nil {
		t.Fatal(err)
	}
	truncated := []byte(`{"version":1,"auctions":[{"id":"4","productId":4,"con`)
	if err := os.WriteFile(filepath.Join(users, "bob.json"), truncated, 0o600); err != nil {
		t.Fatal(err)
	}

	startGatewayIn(t, sim, simURL, simURL, storage, "user bob bob-token")
	lot := sim.Auctions()[1]
	w := watch(t, lot.ID) // the default user works
	w.await(t, float64(lot.CurrentBid), time.Now().Add(5*time.Second))
	if list := gatewayAPI(t, http.MethodGet, "/api/auctions", "bob-token", "")["auctions"].([]any); len(list) != 0 {
		t.Errorf("bob does not start empty: %v", list)
	}
	if n := scrape(t).get(t, "nellis_user_records_quarantined_total"); n != 1 {
		t.Errorf("nellis_user_records_quarantined_total = %v, want 1", n)
	}
	var report struct {
		Quarantined []struct {
			User, Key, Reason string
		} `json:"quarantined_records"`
	}
	getJSON(t, adminFeeds, &report)
	if len(report.Quarantined) != 1 || report.Quarantined[0].User != "bob" {
		t.Fatalf("admin status lists %+v, want bob's record", report.Quarantined)
	}
	kept, err := os.ReadFile(filepath.Join(storage, filepath.FromSlash(report.Quarantined[0].Key)))
	if err != nil || string(kept) != string(truncated) {
		t.Errorf("quarantined copy %q (%v), want the record as it was", kept, err)
	}
}
