package clusterusers

import (
	"strconv"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/users"
)

// newsForBench is an owner's UserNews on an embedded NATS server, with
// nobody following: what a busy owner pays per message besides the
// server's delivery.
func newsForBench(b *testing.B) *UserNews {
	n := startNATS(b)
	nc, _ := n.connect()
	news, err := NewUserNews(nc, NewsOptions{
		Prefix: "nellis", Node: "a", Key: func() []byte { return testKey },
		Owns: func(int64) bool { return true }, Present: func(string) bool { return false },
		AutoBid: func(users.AutoBidState) {}, UserState: func(string, users.LotUserState) {},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(news.Close)
	return news
}

// benchUsers is how many users the owner's messages go to in turn.
const benchUsers = 1000

// The subject of a user's message, as each publish names it.
func BenchmarkUserNewsSubject(b *testing.B) {
	news := newsForBench(b)
	names := make([]string, benchUsers)
	for i := range names {
		names[i] = "user" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = news.Subject(names[i%benchUsers])
		i++
	}
}

// One auto-bid state sent to a user, sealed and published.
func BenchmarkUserNewsPublishAutoBid(b *testing.B) {
	news := newsForBench(b)
	s := users.AutoBidState{ProductID: 7, AuctionID: "7", Status: "waiting", Bids: []users.BidRecord{{At: time.Now(), Amount: 12, Strategy: "auto"}}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.User = "user" + strconv.Itoa(i%benchUsers)
		news.PublishAutoBid(s)
		i++
	}
}
