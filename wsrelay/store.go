package wsrelay

import (
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// storeTimeout bounds one write of a user's data.
const storeTimeout = 10 * time.Second

// recordVersion is the format of a stored user record.
const recordVersion = 1

// userKey is where a user's data lives in the storage.
func userKey(name string) string { return "nellis/users/" + name + ".json" }

// quarantineKey is where a user's record that cannot be read is set aside,
// once per load (at unix seconds at), before the user starts empty.
func quarantineKey(name string, at time.Time) string {
	return fmt.Sprintf("nellis/quarantine/%s-%d.json", name, at.Unix())
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

// userRecord is a user's persisted data. Cookies are sealed with
// AES-256-GCM (nonce prepended, base64) and bound to the user's key, so a
// record copied to another user does not decrypt.
type userRecord struct {
	Version       int       `json:"version"`
	Auctions      []Auction `json:"auctions"`
	SealedCookies string    `json:"sealedCookies,omitempty"`

	cookies string // decrypted; never stored in clear
	// unopened is SealedCookies when they could not be opened (no
	// cookie_key, or another one): they are written back unchanged on
	// every save, so a restart with the right key finds them.
	unopened string
	// quarantined: the stored record could not be read and was set aside.
	quarantined bool
}

// loadUser reads a user's record; a missing record is an empty one. A
// record that cannot be read (not JSON, an unknown version) is copied to a
// quarantine key, reported, and replaced by an empty one, so one bad file
// never keeps the gateway from starting; a storage that fails to load or
// to take the copy is an error, as nothing may be overwritten then.
func (r *Relay) loadUser(ctx context.Context, name string, key []byte) (*userRecord, error) {
	rec := &userRecord{}
	if r.storage == nil {
		return rec, nil
	}
	data, err := r.storage.Load(ctx, userKey(name))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wsrelay: load user %q: %w", name, err)
	}
	if reason := decodeRecord(data, rec); reason != "" {
		// The empty record replaces the bad one at the next save, which
		// applyConfig asks for: the copy keeps it, and later starts do
		// not set it aside again.
		return &userRecord{quarantined: true}, r.quarantine(ctx, name, data, reason)
	}
	rec.Auctions = slices.DeleteFunc(rec.Auctions, func(a Auction) bool {
		return !auctionIDPattern.MatchString(a.ID) || a.ProductID <= 0
	})
	for i := range rec.Auctions {
		// A window the protocol would refuse falls back to the engine's.
		if s := &rec.Auctions[i].Config.SnipeSeconds; *s < 0 || *s > maxSnipeSeconds {
			*s = 0
		}
	}
	r.openRecordCookies(name, rec, key)
	return rec, nil
}

// decodeRecord fills rec from data and says what is wrong with it, ""
// for nothing. The reason never quotes the record, which holds secrets.
func decodeRecord(data []byte, rec *userRecord) string {
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
	if rec.Version != recordVersion {
		return fmt.Sprintf("record version %d, want %d", rec.Version, recordVersion)
	}
	return ""
}

// quarantine copies a record that cannot be read aside and reports it.
func (r *Relay) quarantine(ctx context.Context, name string, data []byte, reason string) error {
	at := r.now()
	q := QuarantinedRecord{User: name, Key: quarantineKey(name, at), At: at, Reason: reason}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := r.storage.Store(sctx, q.Key, data); err != nil {
		return fmt.Errorf("wsrelay: user %q: record %s cannot be read (%s), and setting it aside failed: %w",
			name, userKey(name), reason, err)
	}
	r.log().Error("user record cannot be read: set aside, the user starts with no auctions and no cookies",
		zap.String("user", name), zap.String("record", userKey(name)),
		zap.String("quarantined_as", q.Key), zap.String("reason", reason))
	r.quarantineMu.Lock()
	r.quarantined = append(r.quarantined, q)
	r.quarantineMu.Unlock()
	r.hooksNow().recordQuarantined()
	return nil
}

// Quarantined lists the users' records set aside since the relay started,
// oldest first.
func (r *Relay) Quarantined() []QuarantinedRecord {
	r.quarantineMu.Lock()
	defer r.quarantineMu.Unlock()
	return slices.Clone(r.quarantined)
}

// openRecordCookies decrypts rec's sealed cookies with key, or keeps them
// sealed (rec.unopened) when they cannot be opened.
func (r *Relay) openRecordCookies(name string, rec *userRecord, key []byte) {
	if rec.SealedCookies == "" {
		return
	}
	if key == nil {
		r.log().Warn("stored cookies not used: cookie_key not set; they are kept sealed in storage", zap.String("user", name))
		rec.unopened = rec.SealedCookies
		return
	}
	cookies, err := openCookies(key, name, rec.SealedCookies)
	if err != nil {
		r.log().Warn("stored cookies not used: they do not decrypt with this cookie_key; they are kept sealed in storage", zap.String("user", name))
		rec.unopened = rec.SealedCookies
		return
	}
	rec.cookies = cookies
}

func sealCookies(key []byte, user, cookies string) (string, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(cookies)+gcm.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := gcm.Seal(nonce, nonce, []byte(cookies), []byte(userKey(user)))
	return base64.StdEncoding.EncodeToString(sealed), nil
}

func openCookies(key []byte, user, sealed string) (string, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < gcm.NonceSize() {
		return "", errors.New("malformed sealed cookies")
	}
	plain, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], []byte(userKey(user)))
	if err != nil {
		return "", errors.New("sealed cookies do not authenticate")
	}
	return string(plain), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// saver writes changed users' records from one goroutine, so writes are
// ordered and each writes the latest state. Changes are collected for
// SaveDelay; Shutdown writes what is pending.
type saver struct {
	r     *Relay
	kick  chan struct{}
	mu    sync.Mutex
	dirty map[string]struct{}
}

func newSaver(r *Relay) *saver {
	return &saver{r: r, kick: make(chan struct{}, 1), dirty: make(map[string]struct{})}
}

func (s *saver) markDirty(name string) {
	if s.r.storage == nil {
		return
	}
	s.mu.Lock()
	s.dirty[name] = struct{}{}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *saver) run() {
	defer s.r.wg.Done()
	defer s.r.recoverPanic("saver")
	// The final flush outlives the relay's context on purpose.
	defer s.flush(context.Background())
	for {
		select {
		case <-s.r.ctx.Done():
			return
		case <-s.kick:
		}
		delay := time.NewTimer(s.r.config().SaveDelay)
		select {
		case <-s.r.ctx.Done():
			delay.Stop()
			return
		case <-delay.C:
		}
		s.flush(s.r.ctx)
	}
}

func (s *saver) flush(ctx context.Context) {
	s.mu.Lock()
	names := make([]string, 0, len(s.dirty))
	for name := range s.dirty {
		names = append(names, name)
	}
	clear(s.dirty)
	s.mu.Unlock()
	slices.Sort(names)
	for _, name := range names {
		if err := s.save(ctx, name); err != nil {
			// Logged once per debounced save, never per retry loop.
			s.r.log().Error("saving user data failed", zap.String("user", name), zap.Error(err))
		}
	}
}

func (s *saver) save(ctx context.Context, name string) error {
	r := s.r
	r.mu.RLock()
	u, ok := r.users[name]
	if !ok {
		r.mu.RUnlock()
		return nil
	}
	rec := userRecord{Version: recordVersion, Auctions: make([]Auction, 0, len(u.auctions))}
	for _, a := range u.auctions {
		rec.Auctions = append(rec.Auctions, a.Auction)
	}
	cookies, unopened := u.cookies, u.unopenedCookies
	r.mu.RUnlock()
	slices.SortFunc(rec.Auctions, func(a, b Auction) int {
		return cmp.Or(cmp.Compare(a.AddedAt, b.AddedAt), cmp.Compare(a.ID, b.ID))
	})
	// Sealed cookies this key cannot open stay as they were until cookies
	// sealed with the current key replace them: a restart without the key
	// (or with the wrong one) must not destroy them.
	rec.SealedCookies = unopened
	if key := r.cookieKey.Load(); key != nil && cookies != "" {
		sealed, err := sealCookies(*key, name, cookies)
		if err != nil {
			return fmt.Errorf("seal cookies: %w", err)
		}
		rec.SealedCookies = sealed
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return r.storage.Store(ctx, userKey(name), data)
}
