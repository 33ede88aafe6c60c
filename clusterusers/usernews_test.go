package clusterusers

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nellis-edge/gateway/users"
)

// newsNode is one node's UserNews with what it received.
type newsNode struct {
	news    *UserNews
	mu      sync.Mutex
	present map[string]bool
	got     []string // "user auto status" or "user lot winning"
}

func newNewsNode(t *testing.T, nc *nats.Conn, node string, key func() []byte, owns bool) *newsNode {
	t.Helper()
	n := &newsNode{present: make(map[string]bool)}
	news, err := NewUserNews(nc, NewsOptions{
		Prefix: "nellis", Node: node, Key: key,
		Owns: func(int64) bool { return owns },
		Present: func(name string) bool {
			n.mu.Lock()
			defer n.mu.Unlock()
			return n.present[name]
		},
		AutoBid: func(s users.AutoBidState) {
			n.add(fmt.Sprintf("%s %s %s %d", s.User, s.AuctionID, s.Status, len(s.Bids)))
		},
		UserState: func(name string, s users.LotUserState) {
			n.add(fmt.Sprintf("%s lot %d winning=%v", name, s.ProductID, s.IsWinning))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(news.Close)
	n.news = news
	return n
}

func (n *newsNode) add(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, s)
}

func (n *newsNode) received() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.got...)
}

func (n *newsNode) join(name string) {
	n.mu.Lock()
	n.present[name] = true
	n.mu.Unlock()
	n.news.Touch(name)
}

// The subject names no user and depends on the key; a user's news reaches
// only the nodes following that user, only from the lot's owner, sealed
// for that user alone, and a long history is cut to fit.
func TestUserNewsGoesToTheUserAlone(t *testing.T) {
	srv := startNATS(t)
	key := bytes.Repeat([]byte{1}, 32)
	ncA, _ := srv.connect()
	ncB, _ := srv.connect()
	a := newNewsNode(t, ncA, "a", func() []byte { return key }, true)
	b := newNewsNode(t, ncB, "b", func() []byte { return key }, false)

	subj := a.news.Subject("alice@example.com")
	if strings.Contains(subj, "alice") || subj == a.news.Subject("bob") || !strings.HasPrefix(subj, "nellis.user.") {
		t.Fatalf("subject %q", subj)
	}
	other, _ := NewUserNews(ncA, NewsOptions{Prefix: "nellis", Key: func() []byte { return bytes.Repeat([]byte{2}, 32) },
		Owns: a.news.opts.Owns, Present: a.news.opts.Present, AutoBid: a.news.opts.AutoBid, UserState: a.news.opts.UserState})
	if other.Subject("alice@example.com") == subj {
		t.Fatal("the subject does not depend on the key")
	}

	b.join("alice@example.com")
	b.join("bob")
	if err := ncB.Flush(); err != nil {
		t.Fatal(err)
	}
	// a copy of alice's sealed news on bob's subject does not open.
	spy, err := ncA.SubscribeSync(subj)
	if err != nil {
		t.Fatal(err)
	}
	if err := ncA.Flush(); err != nil {
		t.Fatal(err)
	}

	long := make([]users.BidRecord, 400)
	for i := range long {
		long[i] = users.BidRecord{At: time.Unix(int64(i), 0), Amount: i, Strategy: "auto", Result: "outbid", Message: strings.Repeat("m", 100)}
	}
	a.news.PublishAutoBid(users.AutoBidState{User: "alice@example.com", AuctionID: "7", ProductID: 7, Status: "outbid", Bids: long})
	a.news.PublishUserState("alice@example.com", users.LotUserState{ProductID: 7, IsWinning: true})
	b.news.PublishAutoBid(users.AutoBidState{User: "alice@example.com", AuctionID: "7", ProductID: 7, Status: "watching"}) // b does not own 7
	msg, err := spy.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Data) > maxNewsBytes || bytes.Contains(msg.Data, []byte("alice")) || bytes.Contains(msg.Data, []byte("outbid")) {
		t.Fatalf("the message is %d bytes, or readable", len(msg.Data))
	}
	if err := ncA.Publish(b.news.Subject("bob"), msg.Data); err != nil {
		t.Fatal(err)
	}

	want := []string{"alice@example.com 7 outbid 100", "alice@example.com lot 7 winning=true"}
	deadline := time.Now().Add(2 * time.Second)
	for len(b.received()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for anything else to arrive
	if got := b.received(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("b received %q, want %q", got, want)
	}
	if got := a.received(); len(got) != 0 {
		t.Fatalf("a, following nobody, received %q", got)
	}
}

// waitReceived waits until n has received want, in order, and nothing
// else.
func (n *newsNode) waitReceived(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for len(n.received()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := n.received(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received %q, want %q", got, want)
	}
}

// A reload that brings a new cookie key moves the users followed on a
// node to their new subjects, where the owner, on the new key too, now
// publishes: without Refollow they would hear nothing more.
func TestUserNewsFollowsUsersToANewCookieKey(t *testing.T) {
	srv := startNATS(t)
	var mu sync.Mutex
	key := bytes.Repeat([]byte{5}, 32)
	keyNow := func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return key
	}
	ncA, _ := srv.connect()
	ncB, _ := srv.connect()
	a := newNewsNode(t, ncA, "a", keyNow, true)
	b := newNewsNode(t, ncB, "b", keyNow, false)
	b.join("alice")
	if err := ncB.Flush(); err != nil {
		t.Fatal(err)
	}
	a.news.PublishAutoBid(users.AutoBidState{User: "alice", AuctionID: "7", ProductID: 7, Status: "watching"})
	b.waitReceived(t, "alice 7 watching 0")

	mu.Lock()
	key = bytes.Repeat([]byte{6}, 32) // both nodes reloaded with a new key
	mu.Unlock()
	b.news.Refollow()
	if err := ncB.Flush(); err != nil {
		t.Fatal(err)
	}
	a.news.PublishAutoBid(users.AutoBidState{User: "alice", AuctionID: "7", ProductID: 7, Status: "outbid"})
	b.waitReceived(t, "alice 7 watching 0", "alice 7 outbid 0")
	if !b.news.Following("alice") {
		t.Fatal("alice is no longer followed after the new key")
	}
}

// What the cookie key derives is kept for the next message, and follows
// the key: a reload's new key gives new subjects and a new seal, the old
// key's messages no longer open, and a name's subject is the same whether
// it was derived before or found in the bounded cache.
func TestUserNewsKeysFollowTheCookieKey(t *testing.T) {
	n := startNATS(t)
	nc, _ := n.connect()
	var mu sync.Mutex
	key := bytes.Repeat([]byte{3}, 32)
	news, err := NewUserNews(nc, NewsOptions{
		Prefix: "nellis", Node: "a",
		Key: func() []byte {
			mu.Lock()
			defer mu.Unlock()
			return key
		},
		Owns: func(int64) bool { return true }, Present: func(string) bool { return false },
		AutoBid: func(users.AutoBidState) {}, UserState: func(string, users.LotUserState) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(news.Close)
	first := news.Subject("alice")
	sealed, err := users.SealCookies(news.key(), "alice", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if news.Subject("alice") != first {
		t.Fatal("a second Subject differs from the first")
	}

	mu.Lock()
	key = bytes.Repeat([]byte{4}, 32) // a reload's new key
	mu.Unlock()
	if news.Subject("alice") == first {
		t.Fatal("the subject did not change with the cookie key")
	}
	if _, err := users.OpenCookies(news.key(), "alice", sealed); err == nil {
		t.Fatal("news sealed under the old key opens under the new one")
	}
	fresh, _ := NewUserNews(nc, NewsOptions{Prefix: "nellis", Key: func() []byte { return bytes.Repeat([]byte{4}, 32) },
		Owns: func(int64) bool { return true }, Present: func(string) bool { return false },
		AutoBid: func(users.AutoBidState) {}, UserState: func(string, users.LotUserState) {}})
	defer fresh.Close()
	if news.Subject("alice") != fresh.Subject("alice") {
		t.Fatal("the cached subject differs from one derived afresh under the same key")
	}

	// The cache is bounded; names past it still get their own subject.
	for i := range maxCachedSubjects + 100 {
		news.Subject(fmt.Sprint("user", i))
	}
	k := news.derived()
	k.mu.Lock()
	size := len(k.subjects)
	k.mu.Unlock()
	if size > maxCachedSubjects {
		t.Fatalf("%d subjects cached, bound %d", size, maxCachedSubjects)
	}
	if news.Subject("alice") != fresh.Subject("alice") || news.Subject("user1") != fresh.Subject("user1") {
		t.Fatal("a subject derived again past the bound differs")
	}
}
