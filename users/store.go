package users

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// UserStore keeps users' records across restarts. The relay loads a user
// when the config first names them and saves them (through a Saver) after
// each change.
type UserStore interface {
	// Load returns the user's record, its cookies opened with key (nil
	// when no cookie key is set). A missing record is an empty one. An
	// error means nothing may be written for this user.
	Load(ctx context.Context, name string, key []byte) (Record, error)
	// Save writes the user's record, its cookies sealed with key; without
	// a key the cookies stay in memory only.
	Save(ctx context.Context, name string, rec Record, key []byte) error
	// Quarantined lists the records set aside since the store was made,
	// oldest first.
	Quarantined() []QuarantinedRecord
}

// SnapshotSaver is a UserStore that changes the caller's records itself
// (clusterusers merges in other nodes' changes as they come): a record
// taken before such a merge and saved after it would write over the
// merged change. It takes the record with snapshot itself, ordered against
// its merges, and writes that. The Saver uses it when the store has it.
type SnapshotSaver interface {
	SaveSnapshot(ctx context.Context, name string, snapshot func() (Record, bool), key []byte) error
}

// Storage is the key-value storage StorageStore writes to: the subset of
// certmagic.Storage that Caddy's ctx.Storage() satisfies. Load must return
// an error matching fs.ErrNotExist for a missing key.
type Storage interface {
	Load(ctx context.Context, key string) ([]byte, error)
	Store(ctx context.Context, key string, value []byte) error
}

// Record is one user's data as loaded and saved.
type Record struct {
	Auctions []Auction
	// Cookies are the user's opened Nellis cookies, "" when none; secret,
	// never stored in clear.
	Cookies string
	// Unopened are the stored sealed cookies the cookie key could not open
	// (no key, or another one). They are written back unchanged on every
	// save until cookies sealed with the current key replace them, so a
	// restart without the right key never destroys them.
	Unopened string
	// Quarantined: the stored record could not be read and was set aside;
	// the user starts empty, and the next save replaces the bad record.
	Quarantined bool
	// SignedIn is the user's last sign-in with a signed token, zero for a
	// user who never signed in with one; the retention sweep reads it.
	SignedIn time.Time
}

// QuarantinedRecord is a user's stored record that could not be read
// when the user was loaded: a copy was set aside under Key and the user
// started with no auctions and no cookies.
type QuarantinedRecord struct {
	User   string    `json:"user"`
	Key    string    `json:"key"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// RecordVersion is the format of a stored user record.
const RecordVersion = 1

// StoredRecord is a user's record as StorageStore writes it. Cookies are
// sealed (SealCookies) and bound to the user's key, so a record copied to
// another user does not decrypt.
type StoredRecord struct {
	Version       int       `json:"version"`
	Auctions      []Auction `json:"auctions"`
	SealedCookies string    `json:"sealedCookies,omitempty"`
	// SignedIn is Record.SignedIn.
	SignedIn time.Time `json:"signedIn,omitzero"`
}

// RecordKey is where a user's record lives in the storage.
func RecordKey(name string) string { return "nellis/users/" + name + ".json" }

// quarantineKey is where a user's record that cannot be read is set aside,
// once per load (at unix seconds at), before the user starts empty.
func quarantineKey(name string, at time.Time) string {
	return fmt.Sprintf("nellis/quarantine/%s-%d.json", name, at.Unix())
}

// storeTimeout bounds one write of a user's data.
const storeTimeout = 10 * time.Second

// StorageOptions are a StorageStore's collaborators; each may be zero.
type StorageOptions struct {
	// Logger returns the logger to use now (a reload may replace it).
	// Default: none.
	Logger func() *zap.Logger
	// Now is the clock of quarantine keys. Default: time.Now.
	Now func() time.Time
	// Quarantined is called after each record set aside (a metric).
	Quarantined func()
}

// StorageStore is the UserStore over a key-value Storage, one JSON
// StoredRecord per user under RecordKey.
type StorageStore struct {
	storage Storage
	opts    StorageOptions

	mu          sync.Mutex // a leaf
	quarantined []QuarantinedRecord
}

// NewStorageStore returns the store writing to storage.
func NewStorageStore(storage Storage, opts StorageOptions) *StorageStore {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &StorageStore{storage: storage, opts: opts}
}

func (s *StorageStore) log() *zap.Logger {
	if s.opts.Logger == nil {
		return zap.NewNop()
	}
	return s.opts.Logger()
}

// Load reads a user's record; a missing record is an empty one. A record
// that cannot be read (not JSON, an unknown version) is copied to a
// quarantine key, reported, and replaced by an empty one, so one bad file
// never keeps the gateway from starting; a storage that fails to load or
// to take the copy is an error, as nothing may be overwritten then.
// Auctions the protocol would refuse are dropped, and a snipe window out
// of range falls back to the engine's.
func (s *StorageStore) Load(ctx context.Context, name string, key []byte) (Record, error) {
	data, err := s.storage.Load(ctx, RecordKey(name))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("users: load user %q: %w", name, err)
	}
	var stored StoredRecord
	if reason := decodeRecord(data, &stored); reason != "" {
		// The empty record replaces the bad one at the next save, which
		// the Quarantined flag asks for: the copy keeps it, and later
		// starts do not set it aside again.
		return Record{Quarantined: true}, s.quarantine(ctx, name, data, reason)
	}
	rec := Record{SignedIn: stored.SignedIn, Auctions: slices.DeleteFunc(stored.Auctions, func(a Auction) bool {
		return !ValidAuctionID(a.ID) || a.ProductID <= 0
	})}
	for i := range rec.Auctions {
		if w := &rec.Auctions[i].Config.SnipeSeconds; *w < 0 || *w > MaxSnipeSeconds {
			*w = 0
		}
	}
	s.openRecordCookies(name, &rec, stored.SealedCookies, key)
	return rec, nil
}

// decodeRecord fills rec from data and says what is wrong with it, ""
// for nothing. The reason never quotes the record, which holds secrets.
func decodeRecord(data []byte, rec *StoredRecord) string {
	if err := json.Unmarshal(data, rec); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			return fmt.Sprintf("not JSON (at byte %d)", syntax.Offset)
		case errors.As(err, &typ):
			return fmt.Sprintf("field %q has the wrong type", typ.Field)
		}
		return "not a user record" // io.ErrUnexpectedEOF: truncated
	}
	if rec.Version != RecordVersion {
		return fmt.Sprintf("record version %d, want %d", rec.Version, RecordVersion)
	}
	return ""
}

// quarantine copies a record that cannot be read aside and reports it.
func (s *StorageStore) quarantine(ctx context.Context, name string, data []byte, reason string) error {
	at := s.opts.Now()
	q := QuarantinedRecord{User: name, Key: quarantineKey(name, at), At: at, Reason: reason}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := s.storage.Store(sctx, q.Key, data); err != nil {
		return fmt.Errorf("users: user %q: record %s cannot be read (%s), and setting it aside failed: %w",
			name, RecordKey(name), reason, err)
	}
	s.log().Error("user record cannot be read: set aside, the user starts with no auctions and no cookies",
		zap.String("user", name), zap.String("record", RecordKey(name)),
		zap.String("quarantined_as", q.Key), zap.String("reason", reason))
	s.mu.Lock()
	s.quarantined = append(s.quarantined, q)
	s.mu.Unlock()
	if s.opts.Quarantined != nil {
		s.opts.Quarantined()
	}
	return nil
}

// Quarantined lists the users' records set aside since the store was
// made, oldest first.
func (s *StorageStore) Quarantined() []QuarantinedRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.quarantined)
}

// openRecordCookies decrypts sealed with key into rec, or keeps them
// sealed (rec.Unopened) when they cannot be opened.
func (s *StorageStore) openRecordCookies(name string, rec *Record, sealed string, key []byte) {
	if sealed == "" {
		return
	}
	if key == nil {
		s.log().Warn("stored cookies not used: cookie_key not set; they are kept sealed in storage", zap.String("user", name))
		rec.Unopened = sealed
		return
	}
	cookies, err := OpenCookies(key, name, sealed)
	if err != nil {
		s.log().Warn("stored cookies not used: they do not decrypt with this cookie_key; they are kept sealed in storage", zap.String("user", name))
		rec.Unopened = sealed
		return
	}
	rec.Cookies = cookies
}

// Save writes the user's record: auctions oldest first, cookies sealed
// with key, or the unopened sealed ones as they were.
func (s *StorageStore) Save(ctx context.Context, name string, rec Record, key []byte) error {
	stored := StoredRecord{Version: RecordVersion, Auctions: slices.Clone(rec.Auctions), SignedIn: rec.SignedIn}
	if stored.Auctions == nil {
		stored.Auctions = []Auction{}
	}
	slices.SortFunc(stored.Auctions, func(a, b Auction) int {
		return cmp.Or(cmp.Compare(a.AddedAt, b.AddedAt), cmp.Compare(a.ID, b.ID))
	})
	// Sealed cookies this key cannot open stay as they were until cookies
	// sealed with the current key replace them: a restart without the key
	// (or with the wrong one) must not destroy them.
	stored.SealedCookies = rec.Unopened
	if key != nil && rec.Cookies != "" {
		sealed, err := SealCookies(key, name, rec.Cookies)
		if err != nil {
			return fmt.Errorf("seal cookies: %w", err)
		}
		stored.SealedCookies = sealed
	}
	data, err := json.Marshal(stored)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return s.storage.Store(ctx, RecordKey(name), data)
}

var _ UserStore = (*StorageStore)(nil)
