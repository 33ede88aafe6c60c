package clusterusers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/users"
)

// UserNews carries what the owner of a lot says to one user (the auto-bid
// engine's states, and the user's standing from a snapshot fetched with
// their cookies) to that user's sockets on the other nodes. Only the owner
// bids and fetches with cookies, so without it a user whose socket is on
// another node never sees either.
//
// Each user has a core NATS subject, <prefix>.user.<hash>, where hash is
// an HMAC of the user's name under a key derived from the cookie key: the
// subject names no user, and a node without the key cannot tell whose it
// is. The payload is sealed with that key and bound to the user (as
// cookies are), so a message copied to another user's subject does not
// open. A node follows a user's subject only while the user has sockets
// there (Touch), and asks the owners for what they last said when it
// starts (usersync.go); nothing of it enters the feed log or any stream.
type UserNews struct {
	nc   *nats.Conn
	opts NewsOptions

	sync *nats.Subscription // the node's one subscription to <prefix>.usersync

	mu     sync.Mutex
	subs   map[string]followed // followed users, by name
	closed bool

	// keys is what the cookie key now derives: made again only when the
	// key changes (a reload), not for every message.
	keys atomic.Pointer[newsKeys]
}

// newsKeys is the news's key and the users' subjects derived from one
// cookie key. A busy owner sends its users message after message; each
// would otherwise cost two HMACs before the seal.
type newsKeys struct {
	cookie []byte // the cookie key they come from
	key    []byte

	mu       sync.Mutex // a leaf
	subjects map[string]string
}

// followed is one user's subscription and the subject it was made for:
// a new cookie key names another subject (Refollow).
type followed struct {
	sub     *nats.Subscription
	subject string
}

// maxCachedSubjects bounds newsKeys.subjects: past it, an entry makes
// room for the new one. An owner's users with auctions on its lots fit
// (remote_users is 10,000 by default); a miss costs one HMAC.
const maxCachedSubjects = 16384

// NewsOptions are a UserNews's settings and collaborators.
type NewsOptions struct {
	Prefix string // the cluster's prefix. Required.
	Node   string // this node's name: its own messages are skipped. Required.
	// Key returns the cookie key now: it names the subjects and seals the
	// messages. Required.
	Key func() []byte
	// Owns says whether this node owns a lot now: only the owner's engine
	// speaks for a lot, so only its states are sent. Required.
	Owns func(productID int64) bool
	// Present says whether the user has sockets on this node now. Required.
	Present func(name string) bool
	// AutoBid and UserState receive what another node sent a user followed
	// here (the relay shows them as its own engine's or fetch's). Called
	// from NATS's goroutine for the user, one message at a time. Required.
	AutoBid   func(s users.AutoBidState)
	UserState func(name string, s users.LotUserState)
	// Current is what this node last said to the user on each of their
	// lots: sent again, for the lots it owns, when another node starts
	// following the user (a socket of theirs opened there), so the socket
	// does not wait for the next change to see it. Default: none sent.
	Current func(name string) ([]users.AutoBidState, []users.LotUserState)
	// Logger returns the logger now. Default: none.
	Logger func() *zap.Logger
}

// maxNewsBytes bounds one message, sealed: a state's bid history is cut,
// oldest first, to fit, and a larger message received is dropped.
const maxNewsBytes = 32 << 10

// news is one message on a user's subject, before sealing.
type news struct {
	Node      string              `json:"node"`
	AuctionID string              `json:"auctionId,omitempty"`
	AutoBid   *users.AutoBidState `json:"autoBid,omitempty"`
	Lot       *users.LotUserState `json:"lot,omitempty"`
}

// NewUserNews returns the news of a connection, subscribed to the other
// nodes' sync requests; it follows no user yet.
func NewUserNews(nc *nats.Conn, opts NewsOptions) (*UserNews, error) {
	if nc == nil {
		return nil, errors.New("clusterusers: not connected")
	}
	if opts.Key == nil || opts.Owns == nil || opts.Present == nil || opts.AutoBid == nil || opts.UserState == nil {
		return nil, errors.New("clusterusers: user news needs Key, Owns, Present, AutoBid and UserState")
	}
	n := &UserNews{nc: nc, opts: opts, subs: make(map[string]followed)}
	if opts.Current != nil {
		sub, err := nc.Subscribe(n.syncSubject(), n.resend)
		if err != nil {
			return nil, fmt.Errorf("clusterusers: user news: %w", err)
		}
		n.sync = sub
	}
	return n, nil
}

func (n *UserNews) log() *zap.Logger {
	if n.opts.Logger == nil {
		return zap.NewNop()
	}
	return n.opts.Logger()
}

// derived is what the cookie key now derives, made once per key.
func (n *UserNews) derived() *newsKeys {
	cookie := n.opts.Key()
	if k := n.keys.Load(); k != nil && hmac.Equal(k.cookie, cookie) {
		return k
	}
	// The news's own key: neither the subjects' hash nor the sealing
	// shares a key with the sealed cookies, so a user's sealed cookies
	// never open as news, nor news as cookies.
	m := hmac.New(sha256.New, cookie)
	m.Write([]byte("nellis user news"))
	k := &newsKeys{cookie: slices.Clone(cookie), key: m.Sum(nil), subjects: make(map[string]string)}
	n.keys.Store(k)
	return k
}

// key is the news's own key, sealing the messages.
func (n *UserNews) key() []byte { return n.derived().key }

// Subject is the user's subject: a keyed hash of the name, 128 bits.
func (n *UserNews) Subject(name string) string {
	return n.derived().subject(n.opts.Prefix, name)
}

func (k *newsKeys) subject(prefix, name string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.subjects[name]; ok {
		return s
	}
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte("subject\x00"))
	m.Write([]byte(name))
	s := prefix + ".user." + hex.EncodeToString(m.Sum(nil)[:16])
	if len(k.subjects) >= maxCachedSubjects {
		for other := range k.subjects {
			delete(k.subjects, other) // any one: a map's order is random
			break
		}
	}
	k.subjects[name] = s
	return s
}

// PublishAutoBid sends the engine's state of a user's auction to the
// user's sockets on the other nodes, when this node owns the lot.
func (n *UserNews) PublishAutoBid(s users.AutoBidState) {
	if s.User == "" || !n.opts.Owns(s.ProductID) {
		return
	}
	s.Bids = slices.Clone(s.Bids)
	for {
		err := n.publish(s.User, news{Node: n.opts.Node, AuctionID: s.AuctionID, AutoBid: &s})
		if !errors.Is(err, errTooLarge) || len(s.Bids) == 0 {
			return
		}
		s.Bids = s.Bids[(len(s.Bids)+1)/2:] // the newer half
	}
}

// PublishUserState sends what a snapshot fetched with the user's cookies
// said about them to their sockets on the other nodes.
func (n *UserNews) PublishUserState(name string, s users.LotUserState) {
	if name == "" {
		return
	}
	_ = n.publish(name, news{Node: n.opts.Node, Lot: &s})
}

var errTooLarge = errors.New("clusterusers: user news too large")

func (n *UserNews) publish(name string, msg news) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	k := n.derived()
	sealed, err := users.SealCookies(k.key, name, string(data))
	if err != nil {
		return err
	}
	if len(sealed) > maxNewsBytes {
		return errTooLarge
	}
	// Core NATS: at most once, dropped by the server when no node follows
	// the user. A lost message is made good by the next one, or by the
	// state the user's node shows when the lot moves there.
	if err := n.nc.Publish(k.subject(n.opts.Prefix, name), []byte(sealed)); err != nil {
		return fmt.Errorf("clusterusers: user news: %w", err)
	}
	return nil
}

// Touch follows the user's subject while they have sockets here and stops
// following it once they have none. The relay calls it when a socket of
// the user signs in or closes; a message for a user who has none left
// also ends the following.
func (n *UserNews) Touch(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.touchLocked(name)
}

// Refollow moves every followed user to the subject the cookie key names
// now; the gateway calls it when a reload brings a new key, after which
// the owners publish on the new subjects.
func (n *UserNews) Refollow() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	for name := range n.subs {
		n.touchLocked(name)
	}
}

func (n *UserNews) touchLocked(name string) {
	present := n.opts.Present(name)
	f, following := n.subs[name]
	switch {
	case present && (!following || f.subject != n.Subject(name)):
		subject := n.Subject(name)
		sub, err := n.nc.Subscribe(subject, func(m *nats.Msg) { n.receive(name, m) })
		if err != nil {
			n.log().Warn("following a user's news from other nodes failed", zap.String("user", name), zap.Error(err))
			return
		}
		if following {
			_ = f.sub.Unsubscribe()
		}
		n.subs[name] = followed{sub: sub, subject: subject}
		// Sent after the subscription on the same connection, so the
		// server knows of it before any owner answers.
		n.askOwners(name)
	case !present && following:
		_ = f.sub.Unsubscribe()
		delete(n.subs, name)
	}
}

// Following says whether the user's subject is followed here.
func (n *UserNews) Following(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.subs[name]
	return ok
}

// receive hands one message for name to the relay.
func (n *UserNews) receive(name string, m *nats.Msg) {
	defer func() {
		if v := recover(); v != nil {
			n.log().Error("panic applying a user's news from another node", zap.Any("panic", v), zap.StackSkip("stack", 1))
		}
	}()
	if !n.opts.Present(name) {
		n.Touch(name)
		return
	}
	if len(m.Data) > maxNewsBytes {
		return
	}
	plain, err := users.OpenCookies(n.key(), name, string(m.Data))
	if err != nil {
		return // not sealed for this user with this key
	}
	var msg news
	if json.Unmarshal([]byte(plain), &msg) != nil || msg.Node == n.opts.Node {
		return
	}
	switch {
	case msg.AutoBid != nil:
		s := *msg.AutoBid
		s.User, s.AuctionID = name, msg.AuctionID
		if s.Bids == nil {
			s.Bids = []users.BidRecord{} // the extension reads a list
		}
		n.opts.AutoBid(s)
	case msg.Lot != nil:
		n.opts.UserState(name, *msg.Lot)
	}
}

// Close stops following every user.
func (n *UserNews) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	if n.sync != nil {
		_ = n.sync.Unsubscribe()
	}
	for name, f := range n.subs {
		_ = f.sub.Unsubscribe()
		delete(n.subs, name)
	}
}
