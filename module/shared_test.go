package module

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/internal/memstorage"
	"github.com/nellis-edge/gateway/nellis"
)

// countingStorage counts the loads of users' records.
type countingStorage struct {
	*memstorage.Storage
	loads atomic.Int32
}

func (c *countingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	c.loads.Add(1)
	return c.Storage.Load(ctx, key)
}

// TestOnePassStart: the gateway's state is built in one pass without any
// I/O (no request upstream, no user loaded: `caddy validate` provisions
// and never starts), answers "starting up" until the first start, which
// loads the users, who can then sign in.
func TestOnePassStart(t *testing.T) {
	var upstream atomic.Int32
	nellisSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		upstream.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	defer nellisSrv.Close()
	app := &App{SSEEndpoint: nellisSrv.URL, APIEndpoint: nellisSrv.URL, Users: []User{{Name: "alice", Token: "alice-token-0123456789"}}}
	app.logger = zap.NewNop()
	client, err := nellis.NewClient(app.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	s, err := newShared(app.logger, client, app.hubConfig(), app.biddingConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destruct()
	status := func() int {
		req := httptest.NewRequest(http.MethodGet, "/api/status", nil)
		req.Header.Set("Authorization", "Bearer alice-token-0123456789")
		w := httptest.NewRecorder()
		s.serveAPI(w, req, nil)
		return w.Code
	}
	if code := status(); code != http.StatusServiceUnavailable {
		t.Errorf("before start: %d, want 503 (starting up)", code)
	}
	storage := &countingStorage{Storage: memstorage.New()}
	if err := s.start(context.Background(), app.logger, client, app.hubConfig(), app.relayConfig(nil), app.biddingConfig(), storage); err != nil {
		t.Fatal(err)
	}
	if n := storage.loads.Load(); n != 1 {
		t.Errorf("start loaded %d records, want alice's", n)
	}
	if code := status(); code != http.StatusOK {
		t.Errorf("after start: %d, want 200", code)
	}
	if n := upstream.Load(); n != 0 {
		t.Errorf("%d requests upstream with nothing monitored", n)
	}
}
