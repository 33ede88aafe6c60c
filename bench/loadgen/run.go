package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Options configure one load generator process.
type Options struct {
	// URL is the gateway's WebSocket endpoint, ws://host:port/ws, or
	// several separated by commas (the nodes of a cluster): client i dials
	// the (First+i) mod n-th, so the clients spread evenly over them.
	URL string
	// Secret is the run's secret; client i authenticates as user i with
	// Token(Secret, First+i).
	Secret   string
	First    int
	Clients  int     // sockets to open
	Products []int64 // auctions the clients monitor; none: idle clients
	// Watch, when positive, has each client monitor only this many of
	// Products, client i (counting from First) those from position
	// i×Watch on, wrapping: a night's bidders each watch a few lots of
	// thousands. Default: 0, every client monitors every product.
	Watch int
	// DialConcurrency is how many clients set up at once. Default: 64.
	DialConcurrency int
	// Users, when positive, is how many users the clients share: client
	// i is user (First+i) mod Users (UserIndex). 1 is the old backend's
	// shared token. Default: 0, one user per client.
	Users int
	// CAFile is a PEM file of certificates to trust for a wss:// URL (the
	// bench's generated certificate); empty: the system's roots.
	CAFile string
}

// Run sets the clients up, writes Ready to out, reads the Plan from in,
// measures until the plan's DrainUntil, writes the Result and closes every
// socket. It returns early, with an error, when ctx ends or in fails.
func Run(ctx context.Context, opt Options, in io.Reader, out io.Writer) error {
	if opt.Clients <= 0 {
		return fmt.Errorf("clients must be positive, got %d", opt.Clients)
	}
	if opt.DialConcurrency <= 0 {
		opt.DialConcurrency = 64
	}
	tlsConf, err := clientTLS(opt.CAFile)
	if err != nil {
		return err
	}
	var (
		plan    atomic.Pointer[runPlan]
		stopped atomic.Bool
	)
	started := time.Now()
	// Each client reads from the moment it is set up: a setup of thousands
	// of clients can outlast the gateway's ping timeout, and only a reading
	// client answers pings.
	var readers sync.WaitGroup
	clients, ready := setup(ctx, opt, tlsConf, func(c *client) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			c.read(&plan, &stopped)
		}()
	})
	ready.SetupSecs = time.Since(started).Seconds()
	// Every exit closes the sockets and waits for their readers.
	defer func() {
		stopped.Store(true)
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.stop()
			}()
		}
		wg.Wait()
		readers.Wait()
	}()
	enc := json.NewEncoder(out)
	if err := enc.Encode(ready); err != nil {
		return fmt.Errorf("write ready: %w", err)
	}
	p, err := readPlan(ctx, in)
	if err != nil {
		return err
	}
	plan.Store(p)

	if err := sleepUntil(ctx, p.MeasureFrom); err != nil {
		return err
	}
	cpu0 := cpuTime()
	if err := sleepUntil(ctx, p.MeasureUntil); err != nil {
		return err
	}
	cpu1 := cpuTime()
	if err := sleepUntil(ctx, p.DrainUntil); err != nil {
		return err
	}
	stopped.Store(true)
	for _, c := range clients {
		c.closeConn()
	}
	readers.Wait()
	res := collect(p, opt, clients, started)
	res.CPUSecs = (cpu1 - cpu0).Seconds()
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// setup connects the clients, DialConcurrency at a time, and hands each
// to started once it is monitoring.
func setup(ctx context.Context, opt Options, tlsConf *tls.Config, started func(*client)) ([]*client, Ready) {
	d := &websocket.Dialer{
		HandshakeTimeout: setupTimeout,
		ReadBufferSize:   4096,
		WriteBufferSize:  1024,
		TLSClientConfig:  tlsConf,
	}
	var (
		mu      sync.Mutex
		clients = make([]*client, 0, opt.Clients)
		ready   Ready
		wg      sync.WaitGroup
		slots   = make(chan struct{}, opt.DialConcurrency)
	)
	for i := range opt.Clients {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			token := Token(opt.Secret, UserIndex(opt.First, i, opt.Users))
			c, err := dial(ctx, d, ClientURL(opt.URL, opt.First+i), token, watched(opt, opt.First+i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ready.Failed++
				if ready.FirstErr == "" {
					ready.FirstErr = err.Error()
				}
				return
			}
			c.n, c.token, c.urls, c.dialer = opt.First+i, token, opt.URL, d
			clients = append(clients, c)
			started(c)
		}()
	}
	wg.Wait()
	ready.Connected = len(clients)
	return clients, ready
}

// watched is what client n (counting from 0 across processes) monitors.
func watched(opt Options, n int) []int64 {
	p := len(opt.Products)
	if opt.Watch <= 0 || opt.Watch >= p {
		return opt.Products
	}
	ids := make([]int64, opt.Watch)
	for j := range ids {
		ids[j] = opt.Products[(n*opt.Watch+j)%p]
	}
	return ids
}

// readPlan reads one JSON line; ctx ending abandons the read (the process
// is about to exit, so the blocked reader goroutine ends with it).
func readPlan(ctx context.Context, in io.Reader) (*runPlan, error) {
	type result struct {
		p   Plan
		err error
	}
	got := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(in).ReadBytes('\n')
		var r result
		if err != nil {
			r.err = fmt.Errorf("read plan: %w", err)
		} else if err := json.Unmarshal(line, &r.p); err != nil {
			r.err = fmt.Errorf("read plan: %w", err)
		}
		got <- r
	}()
	select {
	case <-ctx.Done():
		return nil, errStopped
	case r := <-got:
		if r.err != nil {
			return nil, r.err
		}
		p := &runPlan{Plan: r.p}
		if len(p.Schedule.Products) > 0 {
			if err := p.Schedule.Validate(); err != nil {
				return nil, fmt.Errorf("plan: %w", err)
			}
			p.index = p.Schedule.Index()
		}
		if p.DrainUntil.IsZero() || p.MeasureUntil.Before(p.MeasureFrom) || p.DrainUntil.Before(p.MeasureUntil) {
			return nil, fmt.Errorf("plan: want measureFrom ≤ measureUntil ≤ drainUntil, got %s, %s, %s",
				p.MeasureFrom, p.MeasureUntil, p.DrainUntil)
		}
		return p, nil
	}
}

// collect merges the clients' measurements; started is when the first
// client began to dial.
func collect(p *runPlan, opt Options, clients []*client, started time.Time) Result {
	res := Result{Clients: len(clients), Sources: map[string]int64{}}
	var lat, mark, poll, resumedMark []time.Duration
	var lastState time.Time
	var resume *ResumeStats
	var took []time.Duration
	if p.Reconnect {
		resume = &ResumeStats{}
	}
	for _, c := range clients {
		res.Regressions += c.regressions
		if resume != nil && c.reconnects > 0 {
			resume.Clients++
			if c.reconnectFailed {
				resume.Failed++
			}
			t := c.resume
			resume.Products += t.Products
			resume.Recovered += t.Recovered
			resume.UnrecoveredWithin += t.UnrecoveredWithin
			resume.NewEpoch += t.NewEpoch
			resume.Replayed += t.Replayed
			resume.Gaps += t.Gaps
			resume.Skipped += t.Skipped
			resume.Retries += t.Retries
			if resume.FirstErr == "" {
				resume.FirstErr = t.FirstErr
			}
			resume.Broken += t.Broken
			resume.Drops -= c.delivered // plus their expected, below
			resume.Raced += t.Raced
			took = append(took, t.Took...)
		}
		res.StatesMissing += len(opt.Products) - len(c.firstState)
		for _, at := range c.firstState {
			if at.After(lastState) {
				lastState = at
			}
		}
		if c.closeErr == nil {
			res.Open++
		} else if res.FirstClose == "" {
			res.FirstClose = c.closeErr.Error()
		}
		res.Delivered += c.delivered
		res.Duplicates += c.duplicates
		res.Restates += c.restates
		for s, n := range c.sources {
			res.Sources[s] += n
		}
		lat = append(lat, c.lat...)
		if !p.Mark.IsZero() {
			d, ok := slowest(c.afterMark, len(c.products))
			switch {
			case resume != nil && c.reconnects > 0 && ok:
				resumedMark = append(resumedMark, d)
			case resume != nil && c.reconnects > 0:
				resume.MarkMissing++
			case ok:
				mark = append(mark, d)
			default:
				res.MarkMissing++
			}
			if d, ok := slowest(c.afterPoll, len(c.products)); ok {
				poll = append(poll, d)
			}
		}
	}
	if len(opt.Products) > 0 {
		if opt.Watch > 0 || len(p.Closes) > 0 {
			for _, c := range clients {
				for _, id := range c.products {
					res.Expected += p.expected(id, p.MeasureFrom, p.MeasureUntil)
				}
			}
		} else {
			res.Expected = p.Schedule.Count(p.MeasureFrom, p.MeasureUntil) * int64(len(clients))
		}
		res.Drops = res.Expected - res.Delivered
	}
	if !lastState.IsZero() {
		res.StateSetupSecs = lastState.Sub(started).Seconds()
	}
	if len(p.Closes) > 0 || len(p.Remote) > 0 {
		res.Groups = groups(p, clients)
	}
	if resume != nil {
		if len(clients) > 0 {
			resume.Drops += res.Expected / int64(len(clients)) * int64(resume.Clients)
		}
		resume.Took = Summarize(took)
		resume.AfterMark = Summarize(resumedMark)
		res.Resume = resume
	}
	res.Latency = Summarize(lat)
	res.AfterMark = Summarize(mark)
	res.AfterMarkPoll = Summarize(poll)
	res.WindowSecs = p.MeasureUntil.Sub(p.MeasureFrom).Seconds()
	if res.WindowSecs > 0 {
		res.DeliveriesPerSec = float64(res.Delivered) / res.WindowSecs
	}
	return res
}

// slowest is the longest of a client's per-product delays; ok is false
// when some of its n products never had one.
func slowest(perProduct map[int64]time.Duration, n int) (d time.Duration, ok bool) {
	if len(perProduct) < n || n == 0 {
		return 0, false
	}
	for _, v := range perProduct {
		d = max(d, v)
	}
	return d, true
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return errStopped
	case <-timer.C:
		return nil
	}
}

// ClientURL is the endpoint client i dials of urls, one or several
// separated by commas (Options.URL).
func ClientURL(urls string, i int) string {
	list := strings.Split(urls, ",")
	return list[i%len(list)]
}
