package module

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nellis-edge/gateway/clusterusers"
	"github.com/nellis-edge/gateway/users"
)

// The first start with `cluster` imports the user's single-node record
// into the bucket; a change another node makes there reaches this node's
// REST API and is pushed to the user's socket within 250 ms; a change
// made here reaches the bucket.
func TestClusterUsersImportAndFollowOtherNodes(t *testing.T) {
	sim, simURL := newSimulator(t)
	storage := t.TempDir()
	withKey := "cookie_key " + clusterKeyHex
	lot, other := sim.Auctions()[0], sim.Auctions()[1]

	startGatewayIn(t, sim, simURL, simURL, storage, withKey)
	gatewayAPI(t, http.MethodPost, "/api/auth", testToken, `{"cookies":"__session=single-node"}`)
	w := watch(t, lot.ID)
	w.await(t, float64(lot.CurrentBid), time.Now().Add(5*time.Second))
	w.conn.Close()

	url := startTestNATS(t)
	startGatewayIn(t, sim, simURL, simURL, storage, fmt.Sprintf("%s\n\t\tcluster %s {\n\t\t\tnode gw-a\n\t\t}", withKey, url))
	if st := gatewayAPI(t, http.MethodGet, "/api/status", testToken, ""); st["cookiesSynced"] != true {
		t.Fatalf("cookies not imported: %v", st)
	}
	if list := gatewayAPI(t, http.MethodGet, "/api/auctions", testToken, "")["auctions"].([]any); len(list) != 1 {
		t.Fatalf("auctions after the import: %v", list)
	}

	// Another node: its own store on the same bucket.
	key, _ := hex.DecodeString(clusterKeyHex)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := clusterusers.Open(ctx, js, clusterusers.Options{Prefix: "nellis", Key: func() []byte { return key }})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := b.Load(ctx, "default", key)
	if err != nil || rec.Cookies != "__session=single-node" || len(rec.Auctions) != 1 {
		t.Fatalf("the bucket's record: %d auctions, cookies imported %v, %v", len(rec.Auctions), rec.Cookies != "", err)
	}

	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	defer ext.conn.Close()
	ext.monitor(lot.ID) // signed in, the socket hears of the user's auctions

	rec.Auctions[0].Config.MaxBid = 77
	rec.Auctions = append(rec.Auctions, users.Auction{ID: itoa(other.ID), ProductID: other.ID, AddedAt: time.Now().UnixMilli(), Config: users.DefaultAuctionConfig})
	start := time.Now()
	if err := b.Save(ctx, "default", rec, key); err != nil {
		t.Fatal(err)
	}
	ext.next("auctionState", time.Second, func(m map[string]any) bool {
		a, _ := m["auction"].(map[string]any)
		cfg, _ := a["config"].(map[string]any)
		return a["id"] == itoa(lot.ID) && cfg["maxBid"] == 77.0
	})
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("the other node's config reached the socket after %v", took)
	}
	eventually(t, 250*time.Millisecond, "the other node's auction on the REST API", func() bool {
		return len(gatewayAPI(t, http.MethodGet, "/api/auctions", testToken, "")["auctions"].([]any)) == 2
	})

	// A change here reaches the bucket.
	gatewayAPI(t, http.MethodPost, "/api/auth", testToken, `{"cookies":"__session=from-a"}`)
	eventually(t, 2*time.Second, "the cookies synced here in the bucket", func() bool {
		rec, err := b.Load(ctx, "default", key)
		return err == nil && rec.Cookies == "__session=from-a"
	})
}

// bidREST places a bid over the REST API and returns the answer, refusals
// included.
func bidREST(t *testing.T, productID int64, amount int) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:9080/api/auctions/%d/bid", productID),
		strings.NewReader(fmt.Sprintf(`{"amount":%d}`, amount)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A single gateway restarted within a minute of a user's bids still
// counts them against bids_per_minute: the engine's record of the lot is
// in Caddy's storage.
func TestBidRateSurvivesARestart(t *testing.T) {
	sim, simURL := newSimulator(t)
	storage := t.TempDir()
	extra := "cookie_key " + clusterKeyHex + "\n\t\tbids_per_minute 1"
	lot := sim.Auctions()[0]

	startGatewayIn(t, sim, simURL, simURL, storage, extra)
	gatewayAPI(t, http.MethodPost, "/api/auth", testToken, `{"cookies":"sim_user=alice"}`)
	if res := bidREST(t, lot.ID, lot.NextBid); res["success"] != true {
		t.Fatalf("first bid: %v", res)
	}
	startGatewayIn(t, sim, simURL, simURL, storage, extra)
	if res := bidREST(t, lot.ID, lot.NextBid+5); res["errorType"] != "RATE_LIMITED" {
		t.Fatalf("second bid within the minute, after a restart: %v", res)
	}
}

// The gateway in cluster mode owns a lot and bids for the user there: what
// its engine says to the user (an auto-bid state) and what a snapshot
// fetched with the user's cookies says (their standing) leave on the
// user's own NATS subject, where another node with a socket of the user
// (here the test, following the subject as that node would) receives them.
func TestClusterOwnerSendsTheUsersNewsToOtherNodes(t *testing.T) {
	sim, simURL := newSimulator(t)
	url := startTestNATS(t)
	lot := sim.Auctions()[0]
	startGatewayIn(t, sim, simURL, simURL, t.TempDir(),
		fmt.Sprintf("cookie_key %s\n\t\tcluster %s {\n\t\t\tnode gw-a\n\t\t}", clusterKeyHex, url))

	key, _ := hex.DecodeString(clusterKeyHex)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	autoBids := make(chan users.AutoBidState, 64)
	lotStates := make(chan users.LotUserState, 64)
	news, err := clusterusers.NewUserNews(nc, clusterusers.NewsOptions{
		Prefix: "nellis", Node: "gw-b", Key: func() []byte { return key },
		Owns: func(int64) bool { return false }, Present: func(string) bool { return true },
		AutoBid: func(s users.AutoBidState) {
			select {
			case autoBids <- s:
			default:
			}
		},
		UserState: func(_ string, s users.LotUserState) {
			select {
			case lotStates <- s:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer news.Close()
	news.Touch("default")
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	gatewayAPI(t, http.MethodPost, "/api/auth", testToken, `{"cookies":"sim_user=alice"}`)
	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	defer ext.conn.Close()
	ext.send(map[string]any{"type": "authenticate", "token": testToken, "requestId": "req_1"})
	ext.next("authenticated", 5*time.Second, nil)
	ext.send(map[string]any{
		"type": "startMonitoring", "auctionId": itoa(lot.ID), "requestId": "req_2",
		"config":   map[string]any{"maxBid": lot.NextBid + 100, "strategy": "auto", "incrementAmount": 1, "autoBid": true},
		"metadata": map[string]any{"title": "lot", "url": fmt.Sprintf("https://www.nellisauction.com/p/x/%d", lot.ID)},
	})
	ext.next("response", 5*time.Second, nil)

	deadline := time.After(10 * time.Second)
	for gotAutoBid, gotLot := false, false; !gotAutoBid || !gotLot; {
		select {
		case s := <-autoBids:
			if s.User != "default" || s.AuctionID != itoa(lot.ID) || s.Status == "" {
				t.Fatalf("auto-bid state on the user's subject: %+v", s)
			}
			gotAutoBid = true
		case s := <-lotStates:
			if s.ProductID != lot.ID {
				t.Fatalf("user state on the user's subject: %+v", s)
			}
			gotLot = true
		case <-deadline:
			t.Fatalf("the owner's news for the user did not leave on their subject (auto-bid %v, user state %v)", gotAutoBid, gotLot)
		}
	}
	// No stream, the feed log included, keeps the user's news.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if name, err := js.StreamNameBySubject(ctx, news.Subject("default")); err == nil {
		t.Fatalf("stream %s keeps the user's news", name)
	}
	if _, err := js.StreamNameBySubject(ctx, "nellis.feed."+itoa(lot.ID)); err != nil {
		t.Fatalf("the feed log's stream was not found either: %v", err)
	}
}

// The gateway sweeps bid records at start: in Caddy's storage the record
// of a lot closed over bid_retention ago is removed, the record of a lot
// closed within it stays.
func TestBidRecordsOfLongClosedLotsAreSweptAtStart(t *testing.T) {
	sim, simURL := newSimulator(t)
	storage := t.TempDir()
	write := func(productID int64, closed time.Time) string {
		t.Helper()
		file := filepath.Join(storage, filepath.FromSlash(users.BidsKey("default", productID)))
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			t.Fatal(err)
		}
		data := fmt.Sprintf(`{"revision":1,"tried":[10],"bids":[{"at":%q,"amount":10,"strategy":"auto","result":"outbid"}],"closesAt":%q}`,
			closed.Add(-time.Hour).Format(time.RFC3339), closed.Format(time.RFC3339))
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	old := write(101, time.Now().Add(-49*time.Hour))
	recent := write(102, time.Now().Add(-47*time.Hour))
	startGatewayIn(t, sim, simURL, simURL, storage, "bid_retention 48h")
	eventually(t, 5*time.Second, "the old record swept", func() bool {
		_, err := os.Stat(old)
		return errors.Is(err, fs.ErrNotExist)
	})
	if _, err := os.Stat(recent); err != nil {
		t.Fatalf("the record of a lot closed 47 hours ago: %v", err)
	}
}
