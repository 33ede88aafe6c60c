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

// userRecord is a user's persisted data. Cookies are sealed with
// AES-256-GCM (nonce prepended, base64) and bound to the user's key, so a
// record copied to another user does not decrypt.
type userRecord struct {
	Version       int       `json:"version"`
	Auctions      []Auction `json:"auctions"`
	SealedCookies string    `json:"sealedCookies,omitempty"`

	cookies string // decrypted; never stored in clear
}

// loadUser reads a user's record; a missing record is an empty one.
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
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("wsrelay: load user %q from %s: %w", name, userKey(name), err)
	}
	if rec.Version != recordVersion {
		return nil, fmt.Errorf("wsrelay: load user %q: record version %d, want %d", name, rec.Version, recordVersion)
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
	if rec.SealedCookies != "" {
		if key == nil {
			r.log().Warn("stored cookies ignored: cookie_key not set", zap.String("user", name))
		} else if rec.cookies, err = openCookies(key, name, rec.SealedCookies); err != nil {
			r.log().Warn("stored cookies ignored: they do not decrypt with this cookie_key", zap.String("user", name))
		}
	}
	return rec, nil
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
	defer s.r.recoverPanic("saver", nil)
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
	cookies := u.cookies
	r.mu.RUnlock()
	slices.SortFunc(rec.Auctions, func(a, b Auction) int {
		return cmp.Or(cmp.Compare(a.AddedAt, b.AddedAt), cmp.Compare(a.ID, b.ID))
	})
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
