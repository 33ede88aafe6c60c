package wsrelay

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/wsconn"
)

// bidFailed is the errorType of a bid the Bidder could not place at all.
const bidFailed = "BID_FAILED"

// bidWaitMargin is how much longer than the Bidder's own BidTimeout the
// relay waits for PlaceBid. The bidder's clock starts only after its checks,
// and when it runs out the bidder still records the attempt (history, rate,
// Nellis's clock) and answers with a typed, retryable bidResult. Cancelling
// at the same instant would race that answer and hand the user a bare
// "bid failed: context deadline exceeded" instead; the margin lets the
// bidder's answer win. It bounds the wait too should a Bidder ignore ctx.
const bidWaitMargin = time.Second

// The replies, field for field as the extension expects them.
type (
	errorReply struct {
		Type      string          `json:"type"`
		Error     string          `json:"error"`
		RequestID json.RawMessage `json:"requestId,omitempty"`
	}
	authenticatedReply struct {
		Type      string          `json:"type"`
		Success   bool            `json:"success"`
		Error     string          `json:"error,omitempty"`
		RequestID json.RawMessage `json:"requestId,omitempty"`
	}
	actionReply struct {
		Type      string          `json:"type"`
		Action    string          `json:"action"`
		AuctionID string          `json:"auctionId,omitempty"`
		Success   bool            `json:"success"`
		Data      any             `json:"data,omitempty"`
		RequestID json.RawMessage `json:"requestId,omitempty"`
	}
	dataReply struct {
		Type      string          `json:"type"`
		RequestID json.RawMessage `json:"requestId,omitempty"`
		Data      any             `json:"data"`
	}
	bidResultReply struct {
		Type      string          `json:"type"`
		AuctionID string          `json:"auctionId"`
		Success   bool            `json:"success"`
		Data      json.RawMessage `json:"data,omitempty"`
		Amount    float64         `json:"amount,omitempty"`
		Error     string          `json:"error,omitempty"`
		ErrorType string          `json:"errorType,omitempty"`
		Retryable *bool           `json:"retryable,omitempty"`
		RequestID json.RawMessage `json:"requestId,omitempty"`
	}
	pongReply struct {
		Type      string          `json:"type"`
		RequestID json.RawMessage `json:"requestId,omitempty"`
	}
)

func (c *conn) sendError(text string, requestID json.RawMessage) {
	c.send("error", errorReply{Type: "error", Error: text, RequestID: requestID})
}

// handle answers one client message.
func (c *conn) handle(data []byte) {
	m, err := DecodeClientMessage(data)
	if err != nil {
		c.r.hooksNow().messageIn("invalid")
		var pe *ProtocolError
		if errors.As(err, &pe) {
			c.sendError(pe.Text, pe.RequestID)
		}
		return
	}
	c.r.hooksNow().messageIn(m.Type)
	switch m.Type {
	case TypePing:
		c.send("pong", pongReply{Type: "pong", RequestID: m.RequestID})
		return
	case TypeAuthenticate:
		c.handleAuthenticate(m)
		return
	case TypeGetMonitoredAuctions:
		c.r.listTo(c, c.userOf(), func(list json.RawMessage) []byte {
			return c.encode("response", dataReply{Type: "response", RequestID: m.RequestID,
				Data: map[string]json.RawMessage{"auctions": list}})
		})
		return
	case TypeUnsubscribe:
		c.handleUnsubscribe(m)
		return
	}
	u := c.userOf()
	if u == nil {
		c.sendError(errNotAuthed, m.RequestID)
		return
	}
	switch m.Type {
	case TypeStartMonitoring:
		c.handleStartMonitoring(u, m)
	case TypeStopMonitoring:
		c.handleStopMonitoring(u, m)
	case TypeUpdateConfig:
		c.handleUpdateConfig(u, m)
	case TypePlaceBid:
		c.handlePlaceBid(u, m)
	case TypeSubscribe:
		c.handleSubscribe(m)
	case TypeResume:
		c.handleResume(u, m)
	}
}

func (c *conn) userOf() *user {
	c.r.mu.RLock()
	defer c.r.mu.RUnlock()
	return c.user
}

func (c *conn) handleAuthenticate(m *ClientMessage) {
	r := c.r
	refuse := func(text string) {
		c.send("authenticated", authenticatedReply{Type: "authenticated", Error: text, RequestID: m.RequestID})
	}
	// failed answers a failed attempt; the last one allowed closes the
	// socket, so a socket cannot guess on and on.
	failed := func(text string) {
		refuse(text)
		c.authFails++
		if c.authFails >= r.config().AuthFailures {
			c.closeAfterReplies(websocket.ClosePolicyViolation, reasonAuthFailures)
		}
	}
	token, ok := presentedToken(m.Token)
	if !ok {
		failed(errInvalidToken) // nothing guessed: the address's budget is kept
		return
	}
	if !r.authAllowed(c.addr) {
		refuse(errAuthBudgetSpent)
		c.closeAfterReplies(websocket.ClosePolicyViolation, reasonAuthFailures)
		return
	}
	u, expires, configured, refusal := r.signIn(token)
	switch {
	case !configured:
		refuse(errServerMisconfig)
		return
	case u == nil && refusal == errServerMisconfig: // storage failed: no guess
		refuse(refusal)
		return
	case u == nil:
		r.authFailed(c.addr)
		failed(refusal)
		return
	}
	r.mu.Lock()
	if refusal := r.admitLocked(c, u); refusal != "" { // removed by a reload meanwhile, or too many sockets
		r.mu.Unlock()
		refuse(refusal)
		return
	}
	// From here on, what the fan-out and the pushes send c waits until
	// the listing is queued (signin.go): the answer comes first, and the
	// listing is never older than a state sent after it.
	hold := newListHold(r, u)
	c.hold.Store(hold)
	// The peers follow a user from their first socket here to their last.
	var joined, left string
	if c.user != u {
		if c.user != nil {
			c.user.countSubs(c, -1)
			delete(c.user.conns, c)
			if len(c.user.conns) == 0 {
				left = c.user.name
			}
		} else {
			r.addUnauthedLocked(c.addr, -1)
		}
		c.user = u
		u.conns[c] = struct{}{}
		u.countSubs(c, 1)
		if len(u.conns) == 1 {
			joined = u.name
		}
	}
	r.noteExpiryLocked(c, expires)
	r.mu.Unlock()
	r.touchPeers(left)
	r.hooksNow().authenticated(u.name)
	r.listAuctions(c, u, hold, func() {
		c.send("authenticated", authenticatedReply{Type: "authenticated", Success: true, RequestID: m.RequestID})
	}, "monitoredAuctions", func(list json.RawMessage) []byte {
		return c.encode("monitoredAuctions", monitoredAuctionsMsg{Type: "monitoredAuctions", Auctions: list})
	})
	// After the listing: what the other nodes send the user now follows it.
	r.touchPeers(joined)
}

type monitoredAuctionsMsg struct {
	Type     string          `json:"type"`
	Auctions json.RawMessage `json:"auctions"`
}

// deauthenticateLocked makes c an unauthenticated socket again, with
// AuthTimeout from now to sign in anew.
func (r *Relay) deauthenticateLocked(c *conn) {
	if c.user == nil {
		return
	}
	c.user.countSubs(c, -1)
	delete(c.user.conns, c)
	c.user = nil
	c.expires = time.Time{}
	c.unauthedSince = time.Now().UnixNano()
	r.addUnauthedLocked(c.addr, 1)
}

func (c *conn) handleStartMonitoring(u *user, m *ClientMessage) {
	r := c.r
	md := m.Metadata
	if md == nil {
		md = &Metadata{}
	}
	productID, ok := productIDOf(m.AuctionID, md.URL)
	if !ok {
		c.sendError(fmt.Sprintf("Cannot tell the Nellis product of auction %s: use its numeric id or a /p/<slug>/<id> url", m.AuctionID), m.RequestID)
		return
	}
	r.mu.Lock()
	if r.users[u.name] != u { // removed by a reload meanwhile: the Directory's user is another
		r.mu.Unlock()
		c.sendError(errNotAuthed, m.RequestID)
		return
	}
	a, exists := u.auctions[m.AuctionID]
	var before []byte // what the user saw of an auction monitored already
	if exists {
		before = a.head
	}
	if !exists {
		if limit := r.config().MaxAuctions; r.dir.MonitorCount(u.name) >= limit {
			r.mu.Unlock()
			c.sendError(fmt.Sprintf("Monitoring limit reached: at most %d auctions per user; stop monitoring another auction first", limit), m.RequestID)
			return
		}
		if refusal := r.productLimitLocked(u, productID); refusal != "" {
			r.mu.Unlock()
			c.sendError(refusal, m.RequestID)
			return
		}
	}
	patch := func(a *Auction) {
		if md.Title != "" {
			a.Title = md.Title
		}
		if md.URL != "" {
			a.URL = md.URL
		}
		if md.ImageURL != nil {
			a.ImageURL = md.ImageURL
		}
		applyPatch(&a.Config, m.Config)
	}
	if !exists {
		// Added whole: the saver reads the directory under its own lock,
		// and an auction added bare and patched after could be saved in
		// between, with the default config; in a cluster the other nodes
		// would show the user that maxBid of 0 until the next save.
		added := Auction{ID: m.AuctionID, ProductID: productID, Config: defaultAuctionConfig, AddedAt: r.now().UnixMilli()}
		patch(&added)
		r.dir.Monitor(u.name, added)
		a = newMonitored(added, u)
		u.auctions[a.ID] = a
		r.addMonitorLocked(a)
	}
	auction, _ := r.dir.UpdateAuction(u.name, m.AuctionID, patch)
	a.setHead(auction)
	changed := !exists || !bytes.Equal(before, a.head)
	productID = a.ProductID // an auction keeps the product it started with
	r.mu.Unlock()
	if !exists {
		r.acquire(productID)
		r.prioritize(productID) // subscribed before, its snapshot may wait in the background
	}
	if changed {
		r.saver.MarkDirty(u.name)
		r.refreshAutoBid(productID)
	}
	c.send("response", actionReply{Type: "response", Action: TypeStartMonitoring, AuctionID: m.AuctionID, Success: true, RequestID: m.RequestID})
	// The user's other sockets hear of it only when something they show
	// changed: an extension repeats startMonitoring for what it monitors
	// on every reconnect, and with many sockets under one user (the old
	// backend's shared token) a push to all of them each time would cost
	// sockets² writes for nothing.
	r.answerState(c, u, m.AuctionID, changed)
}

func (c *conn) handleStopMonitoring(u *user, m *ClientMessage) {
	r := c.r
	r.mu.Lock()
	a, ok := u.auctions[m.AuctionID]
	ok = ok && r.users[u.name] == u // not a user a reload removed meanwhile
	if ok {
		delete(u.auctions, m.AuctionID)
		r.removeMonitorLocked(a)
		r.dir.Unmonitor(u.name, m.AuctionID)
		r.leftLocked(u, a.ProductID)
	}
	r.mu.Unlock()
	if ok {
		r.release(a.ProductID)
		r.saver.MarkDirty(u.name)
		// Refresh first: once the engine no longer lists the auction it
		// creates no new state for it, so what Forget drops stays dropped.
		r.refreshAutoBid(a.ProductID)
		r.forgetAutoBid(u.name, a.ID)
	}
	c.send("response", actionReply{Type: "response", Action: TypeStopMonitoring, AuctionID: m.AuctionID, Success: ok, RequestID: m.RequestID})
}

func (c *conn) handleUpdateConfig(u *user, m *ClientMessage) {
	if _, err := c.r.updateAuctionConfig(u, m.AuctionID, m.Config); err != nil {
		c.sendError(err.Error(), m.RequestID)
		return
	}
	c.send("response", dataReply{Type: "response", RequestID: m.RequestID, Data: map[string]bool{"success": true}})
	c.r.answerState(c, u, m.AuctionID, true)
}

// errAuctionNotFound is the extension's text for an auction the user does
// not monitor, which includes another user's auction.
func errAuctionNotFound(id string) error { return fmt.Errorf("Auction %s not found", id) }

// updateAuctionConfig applies p, tells the auto-bid engine and returns the
// resulting config.
func (r *Relay) updateAuctionConfig(u *user, auctionID string, p *ConfigPatch) (AuctionConfig, error) {
	r.mu.Lock()
	a, ok := u.auctions[auctionID]
	ok = ok && r.users[u.name] == u // not a user a reload removed meanwhile
	var cfg AuctionConfig
	var productID int64
	if ok {
		var auction Auction
		auction, ok = r.dir.UpdateAuction(u.name, auctionID, func(a *Auction) { applyPatch(&a.Config, p) })
		if ok {
			a.setHead(auction)
			cfg, productID = auction.Config, auction.ProductID
		}
	}
	r.mu.Unlock()
	if !ok {
		return cfg, errAuctionNotFound(auctionID)
	}
	r.saver.MarkDirty(u.name)
	r.refreshAutoBid(productID)
	return cfg, nil
}

func (c *conn) handlePlaceBid(u *user, m *ClientMessage) {
	res := c.r.placeBid(u, m.AuctionID, m.Amount)
	retryable := res.Retryable
	c.send("bidResult", bidResultReply{
		Type: "bidResult", AuctionID: m.AuctionID, Success: res.Success, Data: res.Data,
		Amount: amountIf(res.Success, m.Amount), Error: res.Error, ErrorType: res.ErrorType,
		Retryable: retryableIf(!res.Success, &retryable), RequestID: m.RequestID,
	})
}

func amountIf(ok bool, amount float64) float64 {
	if ok {
		return amount
	}
	return 0
}

func retryableIf(ok bool, v *bool) *bool {
	if ok {
		return v
	}
	return nil
}

// placeBid hands a bid to the Bidder; without one bidding is disabled.
// Like the old backend, it bids on any auction, monitored or not: one the
// user does not monitor is named by its numeric product id (any other id
// names nothing the gateway could bid on), and the bidder keeps the lot's
// rules without showing a state under it. Whether the lot is still open is
// Nellis's answer to give (AUCTION_ENDED): following its feed for one bid
// would cost an upstream stream and a snapshot round trip before the bid
// leaves, and Nellis decides on the close anyway.
func (r *Relay) placeBid(u *user, auctionID string, amount float64) BidResult {
	bidder := r.bidderNow()
	if bidder == nil {
		return BidResult{Error: errBiddingDisabled, ErrorType: "BIDDING_DISABLED"}
	}
	r.mu.RLock()
	a, ok := u.auctions[auctionID]
	bid := Bid{User: u.name, AuctionID: auctionID, Amount: amount, Cookies: r.cookiesOf(u)}
	if ok {
		bid.ProductID = a.ProductID
	}
	r.mu.RUnlock()
	if !ok {
		productID, numeric := parseProductID(auctionID)
		if !numeric {
			return BidResult{Error: errAuctionNotFound(auctionID).Error() + ": bid on an auction you do not monitor by its numeric Nellis product id", ErrorType: "NOT_FOUND"}
		}
		bid.ProductID, bid.Unmonitored = productID, true
	}
	ctx, cancel := context.WithTimeout(r.ctx, bidder.BidTimeout()+bidWaitMargin)
	defer cancel()
	res, err := bidder.PlaceBid(ctx, bid)
	if err != nil {
		r.log().Warn("bid failed", zap.String("user", u.name), zap.String("auction", auctionID), zap.Error(err))
		return BidResult{Error: "bid failed: " + err.Error(), ErrorType: bidFailed, Retryable: true}
	}
	return res
}

func (c *conn) handleSubscribe(m *ClientMessage) {
	r := c.r
	productID, ok := parseProductID(m.AuctionID)
	if !ok {
		c.sendError(fmt.Sprintf("Cannot subscribe to auction %s: use its numeric Nellis product id", m.AuctionID), m.RequestID)
		return
	}
	r.mu.Lock()
	_, already := c.subs[productID]
	if !already {
		if c.user == nil { // signed out by a reload meanwhile
			r.mu.Unlock()
			c.sendError(errNotAuthed, m.RequestID)
			return
		}
		if refusal := r.productLimitLocked(c.user, productID); refusal != "" {
			r.mu.Unlock()
			c.sendError(refusal, m.RequestID)
			return
		}
		if c.subs == nil {
			c.subs = make(map[int64]struct{})
		}
		c.subs[productID] = struct{}{}
		c.user.countSub(productID, 1)
		set := r.subscribers[productID]
		if set == nil {
			set = make(map[*conn]struct{})
			r.subscribers[productID] = set
		}
		set[c] = struct{}{}
	}
	r.mu.Unlock()
	if !already {
		r.acquire(productID)
	}
	state, _ := r.feeds.State(productID)
	c.sendText("auctionUpdate", auctionUpdateJSON(productID, state, r.now(), m.RequestID))
}

func (c *conn) handleUnsubscribe(m *ClientMessage) {
	r := c.r
	productID, ok := parseProductID(m.AuctionID)
	r.mu.Lock()
	_, subscribed := c.subs[productID]
	if ok && subscribed {
		delete(c.subs, productID)
		if c.user != nil {
			c.user.countSub(productID, -1)
		}
		r.removeSubscriberLocked(productID, c)
		r.leftLocked(c.user, productID)
	}
	r.mu.Unlock()
	if ok && subscribed {
		r.release(productID)
	}
	// The protocol has no reply; answer only a request that waits for one.
	if len(m.RequestID) > 0 {
		c.send("response", actionReply{Type: "response", Action: TypeUnsubscribe, AuctionID: m.AuctionID, Success: true, RequestID: m.RequestID})
	}
}

func (r *Relay) removeSubscriberLocked(productID int64, c *conn) {
	set := r.subscribers[productID]
	delete(set, c)
	if len(set) == 0 {
		delete(r.subscribers, productID)
	}
}

// resumeResult says per auction whether the missed changes were replayed.
type resumeResult struct {
	Recovered bool `json:"recovered"`
	Changes   int  `json:"changes"`
	Found     bool `json:"found"`
}

// handleResume replays, in order, the changes the client missed since the
// (epoch, seq) it last saw of each of the user's auctions; when the feed no
// longer has them it sends the full state with "recovered":false. The
// replayed messages are never coalesced, so none is lost. A replay never
// costs the client its socket: it is queued only when the queue takes it
// whole and still has a place for each later auction's full state and
// the reply; one that does not fit becomes the full state too.
func (c *conn) handleResume(u *user, m *ClientMessage) {
	r := c.r
	ids := make([]string, 0, len(m.Resume))
	for id := range m.Resume {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	results := make(map[string]resumeResult, len(ids))
	for i, id := range ids {
		s, ok := r.auctionHead(u, id)
		if !ok {
			results[id] = resumeResult{}
			continue
		}
		point := m.Resume[id]
		changes, recovered := r.feeds.Since(s.productID, point.Epoch, point.Seq)
		now := r.now()
		if recovered {
			replay := make([]wsconn.Message, len(changes))
			for j, ch := range changes {
				replay[j] = wsconn.Message{Frame: auctionStateFrame(s.head, s.addedAt, ch, s.autoBid, s.userFor(ch), now), Kind: "auctionState", ReceivedAt: ch.ReceivedAt}
			}
			if reserve := len(ids) - i; c.s.SendAll(replay, reserve) {
				results[id] = resumeResult{Recovered: true, Changes: len(changes), Found: true}
				continue
			}
		}
		state, _ := r.feeds.State(s.productID)
		c.sendText("auctionState", auctionStateJSON(s.head, s.addedAt, state, s.autoBid, s.userFor(state), now, true))
		results[id] = resumeResult{Found: true}
	}
	c.send("response", actionReply{Type: "response", Action: TypeResume, Success: true,
		Data: map[string]any{"auctions": results}, RequestID: m.RequestID})
}

// auctionSnapshot is what encoding a user's auction needs, copied under
// the relay's lock.
type auctionSnapshot struct {
	head               []byte
	addedAt, productID int64
	autoBid            autoBidView
	user               *hub.UserState // the user's own state of the lot, nil for none
	stateKey           string         // the owner's (user.stateKey)
}

// snapshot copies what encoding a needs; callers hold r.mu.
func (a *monitored) snapshot() auctionSnapshot {
	return auctionSnapshot{a.head, a.AddedAt, a.ProductID, a.autoBid, a.ownState(nil), a.owner.stateKey}
}

// userFor is the user's own state to show with c: the one kept, else c's
// when it is theirs.
func (s *auctionSnapshot) userFor(c *hub.Change) *hub.UserState {
	if s.user == nil && c != nil && c.User != nil && c.User.Owner == s.stateKey {
		return c.User
	}
	return s.user
}

// auctionHead copies what encoding a user's auction needs, with its
// auto-bid state (asked of the engine when none was pushed yet). Never
// call it holding r.mu.
func (r *Relay) auctionHead(u *user, auctionID string) (auctionSnapshot, bool) {
	r.mu.RLock()
	a, ok := u.auctions[auctionID]
	var s auctionSnapshot
	if ok {
		s = a.snapshot()
	}
	r.mu.RUnlock()
	if !ok {
		return s, false
	}
	s.autoBid = r.fillAutoBid(a, s.autoBid)
	return s, true
}

// auctionList encodes the user's auctions with their current state, oldest
// first; an empty list for nil (a socket that has not authenticated).
func (r *Relay) auctionList(u *user) json.RawMessage {
	if u == nil {
		return json.RawMessage("[]")
	}
	type entry struct {
		auctionSnapshot
		id string
		a  *monitored
	}
	r.mu.RLock()
	entries := make([]entry, 0, len(u.auctions))
	for _, a := range u.auctions {
		entries = append(entries, entry{a.snapshot(), a.ID, a})
	}
	r.mu.RUnlock()
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.addedAt, b.addedAt), cmp.Compare(a.id, b.id))
	})
	now := r.now()
	b := []byte{'['}
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		var state *hub.Change
		if s, ok := r.feeds.State(e.productID); ok {
			state = s
		}
		b = appendAuctionJSON(b, e.head, e.addedAt, state, r.fillAutoBid(e.a, e.autoBid), e.userFor(state), now)
	}
	return append(b, ']')
}
