package wsrelay

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/wsconn"
)

// TestFramesSurvivePartialWrites: a client that pauses while large
// changes keep coming fills its socket, so the first write of a message
// is cut short and a writer goroutine finishes it; meanwhile the client's
// pings are answered through the same queue, between the relay's frames. Every frame
// arrives whole and in order, and every change arrives.
func TestFramesSurvivePartialWrites(t *testing.T) {
	f := newFixtureWith(t, testConfig(), Options{}, func(s *httptest.Server) {
		s.Listener = smallBuffers{s.Listener, 0}
	})
	c := dialWith(t, readBufferDialer(64<<10, 0), f.wsURL(), nil).greeted()
	c.authenticate(tokenAlice)
	ws := c.ws
	const lots = 3
	for id := 1; id <= lots; id++ {
		startMonitoring(c, strconv.Itoa(id), 100)
	}
	var pongs []string
	ws.SetPongHandler(func(data string) error { pongs = append(pongs, data); return nil })

	// The client reads nothing while the changes go out, about 77 KB each:
	// more than the kernel takes in one piece.
	title := strings.Repeat("long title ", 7000)
	for id := int64(1); id <= lots; id++ {
		p := product(id, 50)
		p.Title = title
		f.feeds.publish(newChange(t, p, "e", 2))
		if id >= 2 {
			if err := ws.WriteControl(websocket.PingMessage, []byte(strconv.FormatInt(id, 10)), time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(50 * time.Millisecond)

	for id := 1; id <= lots; id++ {
		a := auctionOf(c.expectType("auctionState")) // a torn frame fails the read
		data, _ := a["data"].(map[string]any)
		if a["id"] != strconv.Itoa(id) || data["title"] != title || a["currentBid"] != 50.0 {
			t.Fatalf("change %d arrived as auction %v, price %v, title of %d bytes", id, a["id"], a["currentBid"], len(data["title"].(string)))
		}
	}
	c.roundTrip()
	// Pongs may be merged (RFC 6455 §5.5.3), but the last ping is answered.
	if len(pongs) == 0 || pongs[len(pongs)-1] != strconv.Itoa(lots) {
		t.Errorf("pongs %q, want the last answering ping %d", pongs, lots)
	}
}

// TestFanoutKeepsEachUsersOwnState: a change fanned out to many users on
// several cores, each user's frame built in a recycled buffer, reaches
// every user with that user's own title and every price in order.
func TestFanoutKeepsEachUsersOwnState(t *testing.T) {
	const users, changes = 3 * fanoutMin, 20
	cfg := testConfig()
	cfg.ConnectionsPerMinute = 2 * users
	cfg.MaxUnauthenticated = 2 * users
	cfg.MaxUnauthenticatedPerAddress = 2 * users
	for i := range users {
		cfg.Users["user"+strconv.Itoa(i)] = "token-" + strconv.Itoa(i)
	}
	f := newFixture(t, cfg, Options{})
	clients := make([]*client, users)
	for i := range clients {
		c := f.login("token-" + strconv.Itoa(i))
		c.send(map[string]any{"type": "startMonitoring", "auctionId": "5", "requestId": "r",
			"metadata": map[string]any{"title": "title of user " + strconv.Itoa(i), "url": "https://www.nellisauction.com/p/x/5"}})
		c.expectType("response")
		c.expectType("auctionState")
		clients[i] = c
	}
	for seq := uint64(1); seq <= changes; seq++ {
		f.feeds.publish(newChange(t, product(5, float64(100+seq)), "e", seq))
	}
	for i, c := range clients {
		for seq := 1; seq <= changes; seq++ {
			a := auctionOf(c.expectType("auctionState"))
			if !wsconn.InlineWrites && a["currentBid"].(float64) > float64(100+seq) {
				// Every state waits in the queue, where a newer one
				// replaces it: a price may be skipped, never reordered.
				seq = int(a["currentBid"].(float64)) - 100
			}
			if a["title"] != "title of user "+strconv.Itoa(i) || a["currentBid"] != float64(100+seq) {
				t.Fatalf("user %d, change %d: title %q, price %v", i, seq, a["title"], a["currentBid"])
			}
		}
	}
}
