package loadgen

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nellis-edge/gateway/nellissim"
)

// fakeNodes are two gateways sharing one feed per product (seq n is a
// product's n-th event of the schedule, epoch e1). The first dies (its
// sockets cut, no close frame) when event dieAt falls due; the second
// answers a resume with the changes after the client's seq, recovered,
// then pushes live. skip makes it leave the first replayed change out
// while announcing it, twice send the second twice, as broken replays
// would (a repeat at either end of a replay looks like a live push racing
// it, which the protocol allows); race
// makes it push the last replayed change again after the reply, as a live
// push racing the replay may.
type fakeNodes struct {
	dieAt             int64
	skip, twice, race bool

	mu    sync.Mutex
	sc    nellissim.Schedule
	ready chan struct{} // closed once sc is set
	wg    sync.WaitGroup
}

func (f *fakeNodes) schedule() nellissim.Schedule {
	<-f.ready
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sc
}

// seq is event k's seq in its product's feed.
func (f *fakeNodes) seq(sc nellissim.Schedule, k int64) uint64 {
	return uint64(k/int64(len(sc.Products))) + 1
}

func (f *fakeNodes) push(conn *websocket.Conn, sc nellissim.Schedule, k int64) error {
	id, price := sc.Event(k)
	return conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil,
		`{"type":"auctionState","auction":{"id":"%d","data":{"currentBid":1}},"currentBid":%d,"seq":%d,"epoch":"e1","source":"sse"}`, id, price, f.seq(sc, k)))
}

func (f *fakeNodes) node(dies bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		var msg struct {
			Type, Token, AuctionID, RequestID string
			Auctions                          map[string]struct {
				Epoch string
				Seq   uint64
			}
		}
		from := int64(0) // the first event pushed live
		for monitored := 0; monitored < 2; {
			if err := conn.ReadJSON(&msg); err != nil {
				return
			}
			switch msg.Type {
			case "authenticate":
				_ = conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"authenticated","success":true,"requestId":%q}`, msg.RequestID))
				_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"monitoredAuctions","auctions":[]}`))
			case "startMonitoring":
				monitored++
				_ = conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil,
					`{"type":"response","action":"startMonitoring","auctionId":%q,"success":true,"requestId":%q}`, msg.AuctionID, msg.RequestID))
			case "resume":
				sc := f.schedule()
				if f.twice {
					time.Sleep(150 * time.Millisecond) // a few more changes to replay
				}
				now := time.Now()
				for sc.At(from).Before(now) {
					from++
				}
				results := map[string]any{}
				lastReplayed := int64(-1)
				for id, point := range msg.Auctions {
					changes := 0
					for k := range from {
						if pid, _ := sc.Event(k); fmt.Sprint(pid) != id || f.seq(sc, k) <= point.Seq {
							continue
						}
						changes++
						lastReplayed = k
						if f.skip && changes == 1 {
							continue
						}
						if f.push(conn, sc, k) != nil || (f.twice && changes == 2 && f.push(conn, sc, k) != nil) {
							return
						}
					}
					results[id] = map[string]any{"recovered": true, "changes": changes, "found": true}
				}
				reply, _ := json.Marshal(map[string]any{"type": "response", "action": "resume", "success": true,
					"data": map[string]any{"auctions": results}, "requestId": msg.RequestID})
				_ = conn.WriteMessage(websocket.TextMessage, reply)
				if f.race && lastReplayed >= 0 && f.push(conn, sc, lastReplayed) != nil {
					return
				}
				monitored = 2
			}
		}
		sc := f.schedule()
		f.wg.Add(1)
		defer f.wg.Done()
		end := sc.At(20)
		for k := from; sc.At(k).Before(end); k++ {
			time.Sleep(time.Until(sc.At(k)))
			if dies && k == f.dieAt {
				_ = conn.UnderlyingConn().Close() // killed: no close frame
				return
			}
			if f.push(conn, sc, k) != nil {
				return
			}
		}
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}
}

// runFailover runs 4 clients over the two nodes (clients 0 and 2 on the
// one that dies) through a schedule of 20 events at 50/s, the node dying
// at event 6 (the mark).
func runFailover(t *testing.T, f *fakeNodes) Result {
	t.Helper()
	f.ready = make(chan struct{})
	a := httptest.NewServer(f.node(true))
	b := httptest.NewServer(f.node(false))
	t.Cleanup(b.Close)
	t.Cleanup(a.Close)
	ws := func(s *httptest.Server) string { return "ws" + strings.TrimPrefix(s.URL, "http") }
	inW, out, done, ready := startRunWith(t, Options{URL: ws(a) + "," + ws(b), Secret: "s", Clients: 4, Products: []int64{7, 9}})
	if ready.Connected != 4 {
		t.Fatalf("ready = %+v", ready)
	}
	start := time.Now().Add(300 * time.Millisecond)
	sc := nellissim.Schedule{Start: start, Rate: 50, Products: []int64{7, 9}, BasePrice: 1000}
	f.mu.Lock()
	f.sc = sc
	f.mu.Unlock()
	close(f.ready)
	plan := Plan{Schedule: sc, MeasureFrom: start, MeasureUntil: sc.At(20), DrainUntil: sc.At(20).Add(500 * time.Millisecond),
		Mark: sc.At(f.dieAt), Reconnect: true, History: 64}
	line, _ := json.Marshal(plan)
	if _, err := inW.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	var res Result
	if !out.Scan() || json.Unmarshal(out.Bytes(), &res) != nil {
		t.Fatalf("no result line: %q", out.Text())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	inW.Close()
	f.wg.Wait()
	if res.Resume == nil {
		t.Fatalf("result without resumes: %+v", res)
	}
	return res
}

// The clients of a node that dies reconnect to the other, resume from the
// last change they saw, and get exactly the changes they missed: none is
// a drop, none a duplicate, and each resume is recovered.
func TestReconnectedClientsResumeWithoutLosingAChange(t *testing.T) {
	res := runFailover(t, &fakeNodes{dieAt: 6})
	r := res.Resume
	if r.Clients != 2 || r.Failed != 0 || r.Products != 4 || r.Recovered != 4 || r.Gaps != 0 || r.Broken != 0 || r.UnrecoveredWithin != 0 {
		t.Fatalf("resume = %+v; want 2 clients, 4 products resumed and recovered, no gap", r)
	}
	if r.Replayed == 0 || r.Took.N != 2 || r.AfterMark.N != 2 || r.MarkMissing != 0 {
		t.Fatalf("resume = %+v; want changes replayed and both clients timed after the mark", r)
	}
	if res.Expected != 80 || res.Drops != 0 || res.Duplicates != 0 || res.Regressions != 0 || res.Open != 4 {
		t.Fatalf("result = %+v; want 80 delivered, no drop or duplicate, 4 sockets open", res)
	}
	if res.AfterMark.N != 2 || res.MarkMissing != 0 {
		t.Fatalf("after the mark: %+v (missing %d); want the two clients that kept their socket", res.AfterMark, res.MarkMissing)
	}
}

// A replay that announces a change it does not send is a gap, and the
// change is a drop.
func TestResumeGapIsCounted(t *testing.T) {
	res := runFailover(t, &fakeNodes{dieAt: 6, skip: true})
	// Each client missed event 6 at least (it fell due as the node
	// died), so at least two replays left a change out.
	if r := res.Resume; r.Gaps < 2 || r.Recovered != 4 || r.Broken < 2 {
		t.Fatalf("resume = %+v; want a gap and a broken replay per product with a change replayed", r)
	}
	if res.Drops != res.Resume.Gaps || res.Resume.Drops != res.Drops {
		t.Fatalf("drops %d (%d of reconnected clients), want the %d changes the replays left out", res.Drops, res.Resume.Drops, res.Resume.Gaps)
	}
}

// A replay that holds a change twice is broken; a live push repeating a
// replayed change (the race the protocol allows) is neither broken nor a
// duplicate, and none of them is a drop.
func TestResumeRepeatsAreTold(t *testing.T) {
	res := runFailover(t, &fakeNodes{dieAt: 6, twice: true})
	if r := res.Resume; r.Broken < 1 || r.Gaps != 0 || r.Raced < 1 || res.Duplicates != 0 || res.Drops != 0 {
		t.Fatalf("twice: resume %+v, %d duplicates, %d drops; want broken replays, no gap, duplicate or drop", r, res.Duplicates, res.Drops)
	}
	res = runFailover(t, &fakeNodes{dieAt: 6, race: true})
	if r := res.Resume; r.Broken != 0 || r.Gaps != 0 || r.Raced < 2 || res.Duplicates != 0 || res.Drops != 0 {
		t.Fatalf("race: resume %+v, %d duplicates, %d drops; want the repeats raced, nothing broken, no duplicate or drop", r, res.Duplicates, res.Drops)
	}
}
