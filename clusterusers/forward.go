package clusterusers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/users"
)

// Forwarder takes a manual bid on a lot another node owns to that node
// (the engine's Forwarder) and places the bids other nodes bring to this one:
// a request on <prefix>.bid.<node>, the node the lot's lease names
// (owner.<product> in <prefix>_owners), answered with the owner's
// BidResult. The user's cookies travel sealed with the cookie key.
type Forwarder struct {
	nc     *nats.Conn
	owners jetstream.KeyValue
	prefix string
	node   string
	key    func() []byte
	logger func() *zap.Logger

	mu   sync.Mutex
	sub  *nats.Subscription
	wg   sync.WaitGroup // bids being placed for other nodes
	stop context.CancelFunc
	ctx  context.Context
}

// ForwarderOptions are a Forwarder's settings.
type ForwarderOptions struct {
	Prefix string // the cluster's prefix. Required.
	Node   string // this node's name. Required.
	// Key returns the cookie key now. Required.
	Key func() []byte
	// Logger returns the logger now. Default: none.
	Logger func() *zap.Logger
}

// forwardedBid is a bid on its way to the lot's owner.
type forwardedBid struct {
	User          string  `json:"user"`
	AuctionID     string  `json:"auctionId"`
	ProductID     int64   `json:"productId"`
	Amount        float64 `json:"amount"`
	SealedCookies string  `json:"sealedCookies,omitempty"`
	Unmonitored   bool    `json:"unmonitored,omitempty"`
}

// forwardedResult is the owner's answer.
type forwardedResult struct {
	Success   bool            `json:"success"`
	Data      json.RawMessage `json:"data,omitempty"`
	Error     string          `json:"error,omitempty"`
	ErrorType string          `json:"errorType,omitempty"`
	Retryable bool            `json:"retryable,omitempty"`
}

// NewForwarder returns a forwarder over the connection; it serves nothing
// until Serve.
func NewForwarder(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, opts ForwarderOptions) (*Forwarder, error) {
	if nc == nil || js == nil {
		return nil, errors.New("clusterusers: not connected")
	}
	owners, err := js.KeyValue(ctx, opts.Prefix+"_owners")
	if err != nil {
		return nil, fmt.Errorf("clusterusers: the owners' bucket: %w", err)
	}
	f := &Forwarder{nc: nc, owners: owners, prefix: opts.Prefix, node: opts.Node, key: opts.Key, logger: opts.Logger}
	f.ctx, f.stop = context.WithCancel(context.Background())
	return f, nil
}

func (f *Forwarder) log() *zap.Logger {
	if f.logger == nil {
		return zap.NewNop()
	}
	return f.logger()
}

func (f *Forwarder) subject(node string) string { return f.prefix + ".bid." + node }

// Forward sends b to the node whose lease names b's lot and returns its
// answer. An error matching users.ErrNoOwner means the bid reached no
// owner (no other node holds the lease, or none listens); any other
// error came after the bid was handed over, whose fate is then unknown.
func (f *Forwarder) Forward(ctx context.Context, b users.Bid) (users.BidResult, error) {
	e, err := f.owners.Get(ctx, "owner."+strconv.FormatInt(b.ProductID, 10))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return users.BidResult{}, users.ErrNoOwner
	}
	if err != nil {
		// Nothing was sent: as good as no owner, and worth a retry.
		return users.BidResult{}, fmt.Errorf("%w: who owns %d: %w", users.ErrNoOwner, b.ProductID, err)
	}
	owner := string(e.Value())
	if owner == "" || owner == f.node {
		return users.BidResult{}, users.ErrNoOwner // its lease is ours, but not yet, or no longer, valid
	}
	msg := forwardedBid{User: b.User, AuctionID: b.AuctionID, ProductID: b.ProductID, Amount: b.Amount, Unmonitored: b.Unmonitored}
	if b.Cookies != "" {
		if msg.SealedCookies, err = users.SealCookies(f.key(), b.User, b.Cookies); err != nil {
			return users.BidResult{}, fmt.Errorf("clusterusers: seal cookies: %w", err)
		}
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return users.BidResult{}, err
	}
	reply, err := f.nc.RequestWithContext(ctx, f.subject(owner), data)
	if errors.Is(err, nats.ErrNoResponders) {
		return users.BidResult{}, users.ErrNoOwner
	}
	if err != nil {
		return users.BidResult{}, fmt.Errorf("clusterusers: bid through %s: %w", owner, err)
	}
	var res forwardedResult
	if err := json.Unmarshal(reply.Data, &res); err != nil {
		return users.BidResult{}, fmt.Errorf("clusterusers: bid through %s: unreadable answer", owner)
	}
	return users.BidResult{Success: res.Success, Data: res.Data, Error: res.Error, ErrorType: res.ErrorType, Retryable: res.Retryable}, nil
}

// Serve answers the bids other nodes forward to this one with place (the
// engine's PlaceOwnBid, which refuses a lot this node does not own), each
// bounded by timeout.
func (f *Forwarder) Serve(place func(context.Context, users.Bid) (users.BidResult, error), timeout func() time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sub != nil {
		return errors.New("clusterusers: already serving")
	}
	sub, err := f.nc.Subscribe(f.subject(f.node), func(m *nats.Msg) {
		f.mu.Lock()
		if f.ctx.Err() != nil {
			f.mu.Unlock()
			return
		}
		f.wg.Add(1)
		f.mu.Unlock()
		go func() {
			defer f.wg.Done()
			f.answer(m, place, timeout())
		}()
	})
	if err != nil {
		return fmt.Errorf("clusterusers: serving forwarded bids: %w", err)
	}
	// Subscribing only queues the request to the server: without the
	// round trip, a bid another node forwards right after this node took a
	// lease could find no responder and be refused as ownerless. A flush
	// that fails (NATS away) leaves the subscription to the reconnect.
	_ = f.nc.FlushTimeout(serveFlushTimeout)
	f.sub = sub
	return nil
}

// serveFlushTimeout bounds Serve's wait for the server to know it.
const serveFlushTimeout = 5 * time.Second

// answer places one forwarded bid and replies.
func (f *Forwarder) answer(m *nats.Msg, place func(context.Context, users.Bid) (users.BidResult, error), timeout time.Duration) {
	defer func() {
		if v := recover(); v != nil {
			f.log().Error("panic placing a forwarded bid", zap.Any("panic", v), zap.StackSkip("stack", 1))
		}
	}()
	var in forwardedBid
	var res users.BidResult
	if err := json.Unmarshal(m.Data, &in); err != nil {
		res = users.BidResult{Error: "unreadable forwarded bid", ErrorType: "BID_FAILED"}
	} else {
		b := users.Bid{User: in.User, AuctionID: in.AuctionID, ProductID: in.ProductID, Amount: in.Amount, Unmonitored: in.Unmonitored}
		if in.SealedCookies != "" {
			if cookies, err := users.OpenCookies(f.key(), in.User, in.SealedCookies); err == nil {
				b.Cookies = cookies
			}
		}
		ctx, cancel := context.WithTimeout(f.ctx, timeout)
		res, _ = place(ctx, b)
		cancel()
	}
	data, _ := json.Marshal(forwardedResult{Success: res.Success, Data: res.Data, Error: res.Error, ErrorType: res.ErrorType, Retryable: res.Retryable})
	_ = m.Respond(data)
}

// Close stops serving and waits for the bids being placed for others.
func (f *Forwarder) Close() {
	f.mu.Lock()
	sub := f.sub
	f.sub = nil
	f.stop()
	f.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	f.wg.Wait()
}
