package nellissim

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Timings of the simulator's own machinery, in real time. Tests in this
// package shorten them.
const (
	defaultCloseCheck   = 100 * time.Millisecond // how often due lots are closed
	defaultDripInterval = time.Second            // SlowDrip: one byte per this
	streamWriteTimeout  = 10 * time.Second       // a reader this slow is dropped
	streamBuffer        = 128                    // events queued per stream before it is dropped
)

// Simulator serves a simulated Nellis Auction. Create it with New, serve it
// with ServeHTTP, run its clocks with Start and end everything with Close.
type Simulator struct {
	cfg    Config
	ext    time.Duration
	logger *zap.Logger
	mux    *http.ServeMux

	closeCheck   time.Duration
	dripInterval time.Duration
	pings        atomic.Int64 // ping rounds broadcast, for tests
	bidDelay     atomic.Int64 // SetBidDelay, a time.Duration

	mu      sync.Mutex
	rng     *rand.Rand // guarded by mu once New returns
	lots    []*lot     // in id order
	byID    map[int64]*lot
	live    map[*stream]struct{} // every stream whose handler has not returned
	rivals  []string
	bidLog  []BidRequest // users' bid requests, oldest first (bidlog.go)
	wire    Wire
	faults  lotFaults // applies to every lot (id 0)
	started bool
	closed  bool
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// New builds a simulator whose catalogue is a pure function of cfg.Seed and
// the start time cfg.Now() returns. Zero or invalid fields take their
// defaults (see Config.Validate to reject them instead).
func New(cfg Config) *Simulator {
	cfg = cfg.withDefaults()
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6e656c6c6973))
	lots, rivals := newCatalog(rng, cfg, cfg.Now())
	s := &Simulator{
		cfg:          cfg,
		ext:          time.Duration(cfg.ExtensionInterval) * time.Second,
		logger:       cfg.Logger,
		closeCheck:   min(defaultCloseCheck, cfg.PingInterval),
		dripInterval: defaultDripInterval,
		rng:          rng,
		lots:         lots,
		byID:         make(map[int64]*lot, len(lots)),
		live:         make(map[*stream]struct{}),
		rivals:       rivals,
		done:         make(chan struct{}),
	}
	for _, l := range lots {
		s.byID[l.id] = l
	}
	s.mux = s.routes()
	return s
}

// Start launches the ping ticker, the closer of due lots and, when
// Config.BidInterval is set, the rival bidder. Without Start streams get no
// pings and lots close only when a request or control call looks at them.
// It does nothing after the first call or after Close.
func (s *Simulator) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	s.goLocked(s.pingLoop)
	s.goLocked(s.closeLoop)
	if s.cfg.BidInterval > 0 {
		s.goLocked(s.rivalLoop)
	}
}

// Close ends every goroutine and every open stream, and returns once they
// have ended. Streams are cut, not finished: a client sees the connection
// end. Requests after Close answer 503.
func (s *Simulator) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	close(s.done)
	open := make([]*stream, 0, len(s.live))
	for st := range s.live {
		open = append(open, st)
	}
	s.mu.Unlock()
	// A stream handler blocked writing to a client that does not read
	// would never see done; an expired deadline frees it.
	for _, st := range open {
		st.cut()
	}
	s.wg.Wait()
}

// ServeHTTP serves Nellis's routes and the /_sim/ control API from the root
// of whatever host or port it is mounted on.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Simulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /live-products", s.serveLiveProducts)
	mux.HandleFunc("GET /p/{slug}/{id}", s.serveProduct)
	mux.HandleFunc("POST /api/bids", s.serveBid)
	s.controlRoutes(mux)
	return mux
}

// goLocked runs f in a goroutine Close waits for. The caller holds mu and
// has checked that the simulator is not closed.
func (s *Simulator) goLocked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// every runs f under mu each period until Close.
func (s *Simulator) every(period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		f()
		s.mu.Unlock()
	}
}

// pingLoop sends `data: ping` to every open stream each PingInterval.
func (s *Simulator) pingLoop() {
	s.every(s.cfg.PingInterval, func() {
		frame := s.wire.event("", "ping")
		for _, l := range s.lots {
			s.broadcastLocked(l, frame)
		}
		s.pings.Add(1)
	})
}

// closeLoop closes lots whose close time has passed on the auction clock.
func (s *Simulator) closeLoop() {
	s.every(s.closeCheck, func() { s.closeDueLocked(s.cfg.Now()) })
}

// closeDueLocked closes every open lot whose close time has passed. It also
// runs before any request reads a lot, so state never lags the clock.
func (s *Simulator) closeDueLocked(now time.Time) {
	for _, l := range s.lots {
		if !l.closed && !now.Before(l.closeTime) {
			s.closeLotLocked(l, l.closeTime)
		}
	}
}

func (s *Simulator) closeLotLocked(l *lot, at time.Time) {
	if !l.close(at) {
		return
	}
	s.logger.Debug("lot closed", zap.Int64("product_id", l.id), zap.Int("final_bid", l.price))
	s.broadcastLocked(l, s.wire.event(closedEventName(l.id), s.wire.closedPayload(l)))
}

// rivalLoop places rival bids at random open lots, the gaps between them
// exponentially distributed around BidInterval.
func (s *Simulator) rivalLoop() {
	t := time.NewTimer(s.nextRivalDelay())
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.placeRivalBid()
		t.Reset(s.nextRivalDelay())
	}
}

func (s *Simulator) nextRivalDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(time.Millisecond, time.Duration(s.rng.ExpFloat64()*float64(s.cfg.BidInterval)))
}

func (s *Simulator) placeRivalBid() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.closeDueLocked(now)
	open := slices.DeleteFunc(slices.Clone(s.lots), func(l *lot) bool { return l.closed })
	if len(open) == 0 {
		return
	}
	l := open[s.rng.IntN(len(open))]
	bidder := s.rivals[s.rng.IntN(len(s.rivals))]
	amount := max(l.nextBid(), l.maxes[bidder]+1) + s.rng.IntN(4)
	if _, err := s.bidLocked(l, now, bidder, amount, false); err != nil {
		s.logger.Debug("rival bid refused", zap.Int64("product_id", l.id), zap.Error(err))
	}
}

// bidLocked places a bid and tells every stream of the lot.
func (s *Simulator) bidLocked(l *lot, now time.Time, bidder string, amount int, jump bool) (bidOutcome, error) {
	out, err := l.placeBid(now, s.ext, bidder, amount, jump)
	if err != nil {
		return out, err
	}
	s.broadcastLocked(l, s.wire.event(bidEventName(l.id), s.wire.bidPayload(l, now)))
	return out, nil
}

// lotLocked returns the lot with that id after closing it if it is due.
func (s *Simulator) lotLocked(id int64) (*lot, error) {
	l, ok := s.byID[id]
	if !ok {
		return nil, errUnknownLot
	}
	s.closeDueLocked(s.cfg.Now())
	return l, nil
}
