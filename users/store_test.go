package users

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/nellis-edge/gateway/internal/memstorage"
)

var (
	testKey  = bytes.Repeat([]byte{7}, 32)
	otherKey = bytes.Repeat([]byte{8}, 32)
)

func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	storage := memstorage.New()
	s := NewStorageStore(storage, StorageOptions{})
	if rec, err := s.Load(ctx, "alice", testKey); err != nil || len(rec.Auctions) != 0 || rec.Cookies != "" {
		t.Fatalf("a missing record: %+v, %v", rec, err)
	}
	in := Record{Cookies: "__session=secret", Auctions: []Auction{
		{ID: "12", ProductID: 12, AddedAt: 2, Config: AuctionConfig{MaxBid: 35, AutoBid: true, SnipeSeconds: 15}},
		{ID: "11", ProductID: 11, AddedAt: 1, Config: DefaultAuctionConfig},
	}}
	if err := s.Save(ctx, "alice", in, testKey); err != nil {
		t.Fatal(err)
	}
	if raw := storage.Get(RecordKey("alice")); bytes.Contains(raw, []byte("secret")) || !bytes.Contains(raw, []byte(`"sealedCookies"`)) {
		t.Fatalf("stored %s: cookies in clear, or not sealed", raw)
	}
	out, err := s.Load(ctx, "alice", testKey)
	if err != nil || out.Cookies != "__session=secret" || len(out.Auctions) != 2 ||
		out.Auctions[0].ID != "11" || out.Auctions[1].Config != in.Auctions[0].Config {
		t.Fatalf("loaded %+v, %v", out, err)
	}
}

func TestStoreWithoutKeyKeepsCookiesInMemory(t *testing.T) {
	storage := memstorage.New()
	s := NewStorageStore(storage, StorageOptions{})
	if err := s.Save(context.Background(), "alice", Record{Cookies: "a=b"}, nil); err != nil {
		t.Fatal(err)
	}
	if raw := storage.Get(RecordKey("alice")); bytes.Contains(raw, []byte("a=b")) || bytes.Contains(raw, []byte("sealedCookies")) {
		t.Fatalf("cookies persisted without a key: %s", raw)
	}
}

// Sealed cookies no key at hand opens are kept as they were, save after
// save, until the right key opens them.
func TestStoreKeepsCookiesItCannotOpen(t *testing.T) {
	ctx := context.Background()
	storage := memstorage.New()
	s := NewStorageStore(storage, StorageOptions{})
	if err := s.Save(ctx, "alice", Record{Cookies: "__session=kept"}, testKey); err != nil {
		t.Fatal(err)
	}
	for _, key := range [][]byte{nil, otherKey} {
		rec, err := s.Load(ctx, "alice", key)
		if err != nil || rec.Cookies != "" || rec.Unopened == "" {
			t.Fatalf("key %x: %+v, %v", key, rec, err)
		}
		if err := s.Save(ctx, "alice", rec, key); err != nil {
			t.Fatal(err)
		}
	}
	if rec, err := s.Load(ctx, "alice", testKey); err != nil || rec.Cookies != "__session=kept" {
		t.Fatalf("after saves without the key: %+v, %v", rec, err)
	}
}

func TestStoreQuarantinesWhatItCannotRead(t *testing.T) {
	ctx := context.Background()
	for name, bad := range map[string]string{
		"truncated":     `{"version":1,"auctions":[{"id":"11","produ`,
		"wrong type":    `{"version":1,"auctions":{}}`,
		"other version": `{"version":2,"auctions":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			storage := memstorage.New()
			_ = storage.Store(ctx, RecordKey("alice"), []byte(bad))
			reported := 0
			s := NewStorageStore(storage, StorageOptions{
				Now:         func() time.Time { return time.Unix(1700000000, 0) },
				Quarantined: func() { reported++ },
			})
			rec, err := s.Load(ctx, "alice", testKey)
			if err != nil || !rec.Quarantined || len(rec.Auctions) != 0 {
				t.Fatalf("loaded %+v, %v", rec, err)
			}
			q := s.Quarantined()
			if len(q) != 1 || q[0].User != "alice" || q[0].Key != "nellis/quarantine/alice-1700000000.json" || reported != 1 {
				t.Fatalf("quarantined %+v, reported %d", q, reported)
			}
			if got := storage.Get(q[0].Key); string(got) != bad {
				t.Errorf("the copy %q, want the record as it was", got)
			}
			if strings.Contains(q[0].Reason, "11") {
				t.Errorf("the reason quotes the record: %q", q[0].Reason)
			}
		})
	}
}

type brokenStorage struct{}

func (brokenStorage) Load(context.Context, string) ([]byte, error) {
	return nil, errors.New("disk on fire")
}
func (brokenStorage) Store(context.Context, string, []byte) error { return errors.New("disk on fire") }

func TestStoreFailureIsNotAnEmptyRecord(t *testing.T) {
	if _, err := NewStorageStore(brokenStorage{}, StorageOptions{}).Load(context.Background(), "alice", nil); err == nil {
		t.Fatal("a storage that cannot load was taken for an empty one")
	}
}

func TestStoreDropsWhatTheProtocolRefuses(t *testing.T) {
	ctx := context.Background()
	storage := memstorage.New()
	_ = storage.Store(ctx, RecordKey("alice"), []byte(`{"version":1,"auctions":[`+
		`{"id":"bad id!","productId":1},{"id":"2","productId":0},`+
		`{"id":"7","productId":7,"config":{"snipeSeconds":9999}},{"id":"8","productId":8,"config":{"snipeSeconds":20}}]}`))
	rec, err := NewStorageStore(storage, StorageOptions{}).Load(ctx, "alice", nil)
	if err != nil || len(rec.Auctions) != 2 || rec.Auctions[0].Config.SnipeSeconds != 0 || rec.Auctions[1].Config.SnipeSeconds != 20 {
		t.Fatalf("loaded %+v, %v", rec, err)
	}
}

// The saver writes each changed user once, the latest state, after the
// delay, and what is pending when it stops.
func TestSaverWritesTheLatestState(t *testing.T) {
	storage := memstorage.New()
	var mu sync.Mutex
	maxBid := 10.0
	snapshots := 0
	sv := NewSaver(NewStorageStore(storage, StorageOptions{}), SaverOptions{
		Snapshot: func(name string) (Record, bool) {
			mu.Lock()
			defer mu.Unlock()
			snapshots++
			return Record{Auctions: []Auction{{ID: "1", ProductID: 1, Config: AuctionConfig{MaxBid: maxBid}}}}, name == "alice"
		},
		Delay: func() time.Duration { return time.Hour },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sv.Run(ctx)
	}()
	sv.MarkDirty("alice")
	sv.MarkDirty("gone")
	mu.Lock()
	maxBid = 20
	mu.Unlock()
	sv.MarkDirty("alice")
	cancel()
	<-done
	if raw := storage.Get(RecordKey("alice")); !bytes.Contains(raw, []byte(`"maxBid":20`)) {
		t.Errorf("stored %s, want the latest state", raw)
	}
	if storage.Get(RecordKey("gone")) != nil || snapshots != 2 {
		t.Errorf("a gone user was written, or %d snapshots for 2 users", snapshots)
	}
}

// blockingStore's saves wait until `want` of them are in progress at once
// (or the wait times out), as a slow disk's synced writes would overlap.
type blockingStore struct {
	UserStore
	want    int
	mu      sync.Mutex
	inside  int
	arrived chan struct{}
	saved   []string
}

func (s *blockingStore) Save(ctx context.Context, name string, rec Record, key []byte) error {
	s.mu.Lock()
	s.inside++
	if s.inside == s.want {
		close(s.arrived)
	}
	s.mu.Unlock()
	select {
	case <-s.arrived:
	case <-time.After(2 * time.Second):
		return errors.New("saves were not written at the same time")
	}
	s.mu.Lock()
	s.saved = append(s.saved, name)
	s.mu.Unlock()
	return nil
}

// A flush writes different users' records at once: with thousands of
// users and a synced write each, one at a time took tens of seconds.
func TestSaverWritesUsersAtOnce(t *testing.T) {
	store := &blockingStore{want: 4, arrived: make(chan struct{})}
	var errs atomic.Int32
	sv := NewSaver(store, SaverOptions{
		Snapshot: func(name string) (Record, bool) { return Record{}, true },
		Delay:    func() time.Duration { return time.Hour },
		Logger: func() *zap.Logger {
			return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zapcore.EncoderConfig{}), zapcore.AddSync(io.Discard), zapcore.ErrorLevel),
				zap.Hooks(func(zapcore.Entry) error { errs.Add(1); return nil }))
		},
	})
	for _, name := range []string{"a", "b", "c", "d"} {
		sv.MarkDirty(name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sv.Run(ctx) // writes what is pending, then returns
	if errs.Load() != 0 || len(store.saved) != 4 {
		t.Fatalf("%d saves failed, %v written: the saver wrote one user at a time", errs.Load(), store.saved)
	}
}
