package wsrelay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/nellis-edge/gateway/tokens"
	"github.com/nellis-edge/gateway/users"
	"github.com/nellis-edge/gateway/wsconn"
)

// Options are the relay's collaborators. Logger and Hooks can be replaced
// later (a reload brings a new logger and metrics registry); the others are
// fixed for the relay's lifetime.
type Options struct {
	Feeds Feeds // required
	// Store keeps users' records; nil keeps them in memory, unless
	// Storage is set.
	Store users.UserStore
	// Storage, when Store is nil, is wrapped in a users.StorageStore
	// logging through the relay's logger. Default: none.
	Storage Storage
	// Bidder places users' bids; nil refuses every bid until SetBidder.
	Bidder Bidder
	// Directory is the users (who they are, their tokens and cookies),
	// shared with whoever else asks for them (the hub's cookie lookup);
	// nil makes one. Default: a new users.Directory.
	Directory *users.Directory
	Logger    *zap.Logger // default zap.NewNop()
	Hooks     Hooks
	// AutoBid tells an auto-bid engine what changed and shows its state
	// (see AutoBidHooks); SetAutoBid replaces it. Default: none.
	AutoBid AutoBidHooks
	// Now is the clock for rate limits and timestamps. Default: time.Now.
	Now func() time.Time
	// ClientIP names the client of a request for the per-address limits
	// (Caddy knows its trusted proxies). Default: the host of RemoteAddr.
	ClientIP func(*http.Request) string
	// Unwrap returns the connection under a server's wrapper of a hijacked
	// connection, for a wrapper that passes reads straight through and
	// buffers nothing (Caddy's h2c-preface check, say), or nil. An idle
	// socket on plain TCP is then parked without a goroutine (wsconn).
	Unwrap func(net.Conn) net.Conn
}

// Relay is the connection registry and each user's sockets, with the
// delivery state of the auctions they monitor (the auctions themselves are
// its users.Directory's).
// It outlives a config reload: UpdateConfig applies new settings to the open
// sockets in place. Shutdown ends it.
type Relay struct {
	feeds    Feeds
	store    users.UserStore            // nil: users' data stays in memory
	bidder   atomic.Pointer[Bidder]     // nil: bidding disabled; SetBidder replaces it
	logger   atomic.Pointer[zap.Logger] // swapped by SetLogger on a reload
	hooks    atomic.Pointer[Hooks]      // swapped by SetHooks on a reload
	autoBid  atomic.Pointer[AutoBidHooks]
	peers    atomic.Pointer[Peers] // nil: a single node; SetPeers sets it
	now      func() time.Time
	clientIP func(*http.Request) string
	tr       *wsconn.Transport // the sockets: framing, writes, parking, pings, read limits
	started  time.Time

	cfg       atomic.Pointer[Config]          // with defaults; read on hot paths
	cookieKey atomic.Pointer[[]byte]          // nil without a key
	reconfig  chan struct{}                   // wakes the sweeper after UpdateConfig
	verifier  atomic.Pointer[tokens.Verifier] // signed tokens (Config.JWT); nil: none accepted
	retention retention                       // the sweep of users known only from tokens

	// dir is the configured users: their tokens, cookies and the auctions
	// they monitor with their configs (users.Directory). The relay changes
	// a user's auctions there under mu, with its delivery state, so the
	// two agree. Its lock is a leaf, taken after interestMu and mu when
	// they are held, never per delivery.
	dir *users.Directory

	ctx    context.Context // the relay's lifetime: cancelled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // the relay's own goroutines (sockets' are the transport's)
	saver  *users.Saver

	// mu guards the relay's side of the registry: sockets, each user's
	// sockets and the delivery state of their monitored auctions (the
	// fan-out's index monitors), interest sets (dir, the users and their
	// auctions, has its own lock, taken after mu, never before, and never
	// on a delivery). No socket is written while it is held:
	// deliver, the pushes (push.go) and the sweeper collect their
	// sockets (and build their frames) under it and send after releasing
	// it. A monitored auction's sendMu, taken before mu, keeps its states
	// in order on its owner's sockets. A push reads Feeds.State under
	// sendMu, which is safe because a feed delivers outside its own locks;
	// Feeds.Subscribe and unsubscribe are called without it.
	mu         sync.RWMutex
	closing    bool
	noKeyNoted bool // "cookie_key not set" was logged for the config in place
	users      map[string]*user
	remote     map[string]*user // loaded only to bid for them (remoteusers.go), a subset of users
	// loadingRemote are the remote users being loaded (LoadRemoteUser).
	loadingRemote map[string]struct{}
	conns         map[*conn]struct{}
	unauthed      int                               // sockets without a user, and upgrades in flight
	unauthedBy    map[string]int                    // the same, by addressKey
	monitors      map[int64]map[*monitored]struct{} // delivery states of the auctions monitored, by product: the fan-out's targets
	subscribers   map[int64]map[*conn]struct{}      // sockets that sent subscribe, by product
	expiry        expiryWatch                       // signed tokens' expiry, for the sweeper

	interestMu sync.Mutex // held across Feeds.Subscribe and unsubscribe; taken before mu, never after
	interest   map[int64]*interest

	ipMu        sync.Mutex
	ipLimits    map[string]*rate.Limiter // connections, by addressKey
	authBudgets map[string]*bucket       // failed authentications, by addressKey
}

// user is the relay's side of one configured user (users.Directory holds
// who is configured, their token, cookies and auctions): their sockets and
// the delivery state of each auction they monitor; its fields are guarded
// by Relay.mu.
type user struct {
	name string
	// auctions is the delivery state of each auction the user monitors
	// in the Directory, by id: the two change together, under Relay.mu.
	auctions map[string]*monitored
	conns    map[*conn]struct{} // authenticated sockets
	// subs counts, by product, the user's sockets that sent subscribe,
	// so fair use counts a user's products without visiting every socket
	// (productLimitLocked).
	subs map[int64]int
	// stateKey is the Directory's key for the user state fetched with the
	// user's cookies (hub.UserState.Owner), copied here whenever the
	// cookies change (setCookies) so a delivery reads it under mu alone.
	stateKey string
}

// New builds a relay and loads every configured user's saved data. ctx
// bounds only the loading.
func New(ctx context.Context, cfg Config, opts Options) (*Relay, error) {
	if opts.Feeds == nil {
		return nil, errors.New("wsrelay: Feeds is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("wsrelay: %w", err)
	}
	r := &Relay{
		feeds:         opts.Feeds,
		store:         opts.Store,
		now:           opts.Now,
		clientIP:      opts.ClientIP,
		reconfig:      make(chan struct{}, 1),
		dir:           opts.Directory,
		users:         make(map[string]*user),
		remote:        make(map[string]*user),
		loadingRemote: make(map[string]struct{}),
		conns:         make(map[*conn]struct{}),
		monitors:      make(map[int64]map[*monitored]struct{}),
		subscribers:   make(map[int64]map[*conn]struct{}),
		interest:      make(map[int64]*interest),
		ipLimits:      make(map[string]*rate.Limiter),
		authBudgets:   make(map[string]*bucket),
		unauthedBy:    make(map[string]int),
		expiry:        expiryWatch{wake: make(chan struct{}, 1)},
		retention:     retention{ready: make(chan struct{}, 1)},
	}
	if r.dir == nil {
		r.dir = users.NewDirectory()
	}
	r.SetBidder(opts.Bidder)
	r.SetLogger(opts.Logger)
	r.SetHooks(opts.Hooks)
	r.autoBid.Store(&opts.AutoBid)
	if r.now == nil {
		r.now = time.Now
	}
	if r.clientIP == nil {
		r.clientIP = remoteHost
	}
	r.started = r.now()
	withDefaults := cfg.WithDefaults()
	tr, pollerErr := wsconn.New(transportLimits(&withDefaults), transportHooks{r}, opts.Unwrap)
	r.tr = tr
	if r.store == nil && opts.Storage != nil {
		r.store = users.NewStorageStore(opts.Storage, users.StorageOptions{
			Logger: r.log, Now: r.now, Quarantined: func() { r.hooksNow().recordQuarantined() },
		})
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.saver = users.NewSaver(r.store, users.SaverOptions{
		Snapshot: r.userSnapshot,
		Key:      r.cookieKeyNow,
		Delay:    func() time.Duration { return r.config().SaveDelay },
		Logger:   r.log,
	})
	if err := r.applyConfig(ctx, cfg); err != nil {
		r.cancel()
		tr.Close()
		return nil, err
	}
	if pollerErr != nil {
		r.log().Info("idle sockets keep their reader goroutines", zap.Error(pollerErr))
	}
	r.wg.Add(3)
	go r.retain()
	go func() {
		defer r.wg.Done()
		defer r.recoverPanic("saver")
		r.saver.Run(r.ctx)
	}()
	go r.sweep()
	return r, nil
}

// recoverPanic contains a bug in one of the relay's goroutines: it is
// logged with its stack. (The sockets' goroutines are the transport's,
// which reports through transportHooks.Panicked.)
func (r *Relay) recoverPanic(what string) {
	if v := recover(); v != nil {
		r.log().Error("panic in relay goroutine", zap.String("goroutine", what), zap.Any("panic", v), zap.StackSkip("stack", 1))
	}
}

// connsNow is every registered socket, for a caller that sends to some of
// them without holding r.mu.
func (r *Relay) connsNow() []*conn {
	r.mu.RLock()
	defer r.mu.RUnlock()
	conns := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	return conns
}

func remoteHost(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

func (r *Relay) config() *Config { return r.cfg.Load() }

// SetLogger replaces the relay's logger; nil discards logs.
func (r *Relay) SetLogger(l *zap.Logger) {
	if l == nil {
		l = zap.NewNop()
	}
	r.logger.Store(l)
}

// SetBidder makes b the relay's bidder (nil refuses every bid), for an
// engine built after the relay because it reads the relay back
// (AutoBidders, ReportAutoBid).
func (r *Relay) SetBidder(b Bidder) {
	if b == nil {
		r.bidder.Store(nil)
		return
	}
	r.bidder.Store(&b)
}

func (r *Relay) bidderNow() Bidder {
	if b := r.bidder.Load(); b != nil {
		return *b
	}
	return nil
}

// SetHooks replaces the relay's metrics callbacks.
func (r *Relay) SetHooks(h Hooks) { r.hooks.Store(&h) }

func (r *Relay) log() *zap.Logger { return r.logger.Load() }

func (r *Relay) hooksNow() *Hooks { return r.hooks.Load() }

// UpdateConfig applies cfg in place: open sockets stay open and follow the
// new limits; new users' saved data is loaded (and the auto-bid engine told
// of their products); sockets of a user that is gone or whose token changed
// are no longer authenticated, and the engine forgets a gone user's
// auctions. A socket waiting for a message reads that one under the old
// size and rate limits.
func (r *Relay) UpdateConfig(cfg Config) error {
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	return r.Configure(ctx, cfg)
}

// Configure is UpdateConfig with ctx bounding the loading of new users'
// saved data, for a relay built without users (so without I/O) whose
// users are loaded when the gateway starts.
func (r *Relay) Configure(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("wsrelay: %w", err)
	}
	if err := r.applyConfig(ctx, cfg); err != nil {
		return err
	}
	select {
	case r.reconfig <- struct{}{}:
	default:
	}
	return nil
}

func (r *Relay) applyConfig(ctx context.Context, cfg Config) error {
	key, err := ParseCookieKey(cfg.CookieKey)
	if err != nil {
		return fmt.Errorf("wsrelay: %w", err)
	}
	if err := r.applyVerifier(&cfg); err != nil {
		return err
	}
	tokens := cfg.userTokens()
	// Load the new users before taking the lock: storage may be slow.
	r.mu.RLock()
	var fresh, short []string
	for name, token := range tokens {
		if _, ok := r.users[name]; !ok {
			fresh = append(fresh, name)
		}
		if len(token) < minTokenLength && !r.dir.Holds(name, token) {
			short = append(short, name)
		}
	}
	r.mu.RUnlock()
	// A short token is a guessable one. It is the operator's choice, so it
	// is a warning, given when the token is set, not at every reload.
	slices.Sort(short)
	for _, name := range short {
		r.log().Warn("token shorter than recommended: use a long random token",
			zap.String("user", name), zap.Int("recommended_length", minTokenLength))
	}
	loaded := make(map[string]users.Record, len(fresh))
	for _, name := range fresh {
		var rec users.Record
		if r.store != nil {
			if rec, err = r.store.Load(ctx, name, key); err != nil {
				return fmt.Errorf("wsrelay: %w", err)
			}
		}
		loaded[name] = rec
	}

	withDefaults := cfg.WithDefaults()
	var acquire, release []int64
	var gone []*monitored // auctions of users no longer configured
	r.mu.Lock()
	r.cfg.Store(&withDefaults)
	r.tr.SetLimits(transportLimits(&withDefaults))
	if key == nil {
		// Said once, when there are users whose cookies it concerns.
		if len(tokens) > 0 && (r.cookieKey.Load() != nil || !r.noKeyNoted) {
			r.log().Info("cookie_key not set: users' cookies are kept in memory only")
		}
		r.noKeyNoted = len(tokens) > 0
		r.cookieKey.Store(nil)
	} else {
		r.cookieKey.Store(&key)
	}
	changed, goneUsers := r.dir.Set(tokens)
	for _, name := range append(changed, goneUsers...) {
		if u := r.users[name]; u != nil {
			for c := range u.conns {
				r.deauthenticateLocked(c)
			}
		}
	}
	for _, name := range goneUsers {
		if u := r.users[name]; u != nil {
			rel, g := r.dropUserLocked(u)
			release, gone = append(release, rel...), append(gone, g...)
		}
	}
	for _, name := range r.dir.Reopen(key) {
		r.log().Info("stored cookies opened with the new cookie_key", zap.String("user", name))
	}
	for name, rec := range loaded {
		if _, ok := r.users[name]; ok {
			continue // loaded concurrently by another UpdateConfig
		}
		_, acq := r.addUserLocked(name, rec)
		acquire = append(acquire, acq...)
	}
	r.mu.Unlock()
	for name, rec := range loaded {
		if rec.Quarantined {
			r.saver.MarkDirty(name)
		}
	}
	for _, id := range acquire {
		r.acquire(id)
	}
	for _, id := range release {
		r.release(id)
	}
	r.refreshAutoBid(uniqueSorted(append(acquire, release...))...)
	r.retention.configured(&cfg)
	slices.SortFunc(gone, func(x, y *monitored) int {
		return cmp.Or(cmp.Compare(x.owner.name, y.owner.name), cmp.Compare(x.ID, y.ID))
	})
	for _, a := range gone {
		r.forgetAutoBid(a.owner.name, a.ID)
	}
	return nil
}

// uniqueSorted sorts ids and drops repeats, in place.
func uniqueSorted(ids []int64) []int64 {
	slices.Sort(ids)
	return slices.Compact(ids)
}

// authenticate finds the user owning token (users.Directory compares
// every user's token in constant time). A user removed by a reload
// meanwhile is none.
func (r *Relay) authenticate(token string) (u *user, configured bool) {
	name, configured := r.dir.Authenticate(token)
	if name == "" {
		return nil, configured
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.users[name], configured
}

func newUser(name string) *user {
	return &user{name: name, auctions: make(map[string]*monitored), conns: make(map[*conn]struct{}), subs: make(map[int64]int)}
}

// addMonitorLocked adds a's delivery state to the fan-out's index; the
// auction is the Directory's already. Callers hold r.mu.
func (r *Relay) addMonitorLocked(a *monitored) {
	set := r.monitors[a.ProductID]
	if set == nil {
		set = make(map[*monitored]struct{})
		r.monitors[a.ProductID] = set
	}
	set[a] = struct{}{}
}

// removeMonitorLocked takes a's delivery state out of the fan-out's
// index. Callers hold r.mu.
func (r *Relay) removeMonitorLocked(a *monitored) {
	set := r.monitors[a.ProductID]
	delete(set, a)
	if len(set) == 0 {
		delete(r.monitors, a.ProductID)
	}
}

// shutdownGrace is how long Shutdown lets sockets take their close frame
// before it cuts the ones still writing to a stuck client.
const shutdownGrace = 2 * time.Second

// Shutdown closes every socket with code 1001, writes pending user data
// and returns when every goroutine of the relay has ended.
func (r *Relay) Shutdown() {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		r.wg.Wait()
		r.tr.Wait()
		return
	}
	r.closing = true
	conns := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		c.requestClose(websocket.CloseGoingAway, "server shutting down")
	}
	r.cancel()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		r.tr.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		for _, c := range conns {
			c.closeSocket() // a writer stuck on a client that does not read
		}
		<-done
	}
	r.tr.Close() // every socket has ended: none is parked

	r.interestMu.Lock()
	for id, in := range r.interest {
		delete(r.interest, id)
		if in.unsubscribe != nil {
			in.unsubscribe()
		}
	}
	r.interestMu.Unlock()
}

// Destruct shuts the relay down; it lets a caddy.UsagePool own a Relay
// (caddy.Destructor) without this package importing Caddy.
func (r *Relay) Destruct() error {
	r.Shutdown()
	return nil
}

// Stats is a snapshot of the relay's registry.
type Stats struct {
	Connections       int `json:"connections"`
	Authenticated     int `json:"authenticated"`
	Users             int `json:"users"`
	MonitoredAuctions int `json:"monitoredAuctions"`
	Products          int `json:"products"`
	// Parked counts the idle sockets waiting without a reader goroutine
	// (wsconn): on plain TCP, most of them.
	Parked int `json:"parked"`
	// Quarantined lists the users' records set aside because they could
	// not be read (see Relay.Quarantined).
	Quarantined []QuarantinedRecord `json:"quarantined,omitempty"`
	// StoredUsers counts the user records in storage at the last
	// retention sweep (daily); absent before the first.
	StoredUsers *int `json:"storedUsers,omitempty"`
}

// Stats counts the relay's sockets, users and auctions.
func (r *Relay) Stats() Stats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := Stats{Connections: len(r.conns), Users: len(r.users), Products: len(r.monitors), Quarantined: r.Quarantined()}
	if n, ok := r.StoredUsers(); ok {
		s.StoredUsers = &n
	}
	for c := range r.conns {
		if c.s.Parked() {
			s.Parked++
		}
	}
	for _, u := range r.users {
		s.Authenticated += len(u.conns)
		s.MonitoredAuctions += len(u.auctions)
	}
	return s
}
