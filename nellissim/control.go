package nellissim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Auction is one lot as the control API lists it.
type Auction struct {
	ID          int64     `json:"id"`
	Title       string    `json:"title"`
	Path        string    `json:"path"` // the product page, "/p/{slug}/{id}"
	CurrentBid  int       `json:"currentBid"`
	NextBid     int       `json:"nextBid"`
	BidCount    int       `json:"bidCount"`
	BidderCount int       `json:"bidderCount"`
	Leader      string    `json:"leader,omitempty"`
	RetailPrice float64   `json:"retailPrice"`
	CloseTime   time.Time `json:"closeTime"`
	IsClosed    bool      `json:"isClosed"`
}

// Auctions lists every lot in id order.
func (s *Simulator) Auctions() []Auction {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeDueLocked(s.cfg.Now())
	out := make([]Auction, len(s.lots))
	for i, l := range s.lots {
		out[i] = Auction{
			ID: l.id, Title: l.title, Path: l.path(), CurrentBid: l.price, NextBid: l.nextBid(),
			BidCount: l.bidCount, BidderCount: len(l.maxes), Leader: l.leader,
			RetailPrice: l.retailPrice, CloseTime: l.closeTime.UTC(), IsClosed: l.closed,
		}
	}
	return out
}

// EmitBid places a rival bid of exactly amount on product id in bidder's
// name and sends the bid event to its streams. The price becomes amount
// unless another bidder's maximum defends, as with a jump bid on the site.
// It fails as the bid API would: the lot is closed, or amount is below the
// next bid, or bidder already bid this amount.
func (s *Simulator) EmitBid(id int64, amount int, bidder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errSimulatorDown
	}
	l, err := s.lotLocked(id)
	if err != nil {
		return fmt.Errorf("product %d: %w", id, err)
	}
	if _, err := s.bidLocked(l, s.cfg.Now(), bidder, amount, true); err != nil {
		return fmt.Errorf("bid %d on product %d: %w", amount, id, err)
	}
	return nil
}

// CloseLot closes product id now and sends its closed event. Closing a
// closed lot does nothing.
func (s *Simulator) CloseLot(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.lotLocked(id)
	if err != nil {
		return fmt.Errorf("product %d: %w", id, err)
	}
	s.closeLotLocked(l, s.cfg.Now())
	return nil
}

// SetCloseTime moves the close of open product id to at, as an auctioneer
// scheduling a night's lots does; a time already past closes it at the
// next check. Nothing is announced: clients learn it from the next
// snapshot or bid, as on the site. Benchmarks use it to stagger closes
// over a run.
func (s *Simulator) SetCloseTime(id int64, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.lotLocked(id)
	if err != nil {
		return fmt.Errorf("product %d: %w", id, err)
	}
	if l.closed {
		return fmt.Errorf("product %d: %w", id, errAuctionEnded)
	}
	l.closeTime = at
	return nil
}

// controlRoutes mounts the control API, the HTTP face of the methods above:
//
//	GET  /_sim/auctions
//	GET  /_sim/stats?productId=            (absent or 0: totals)
//	GET  /_sim/user-bids?productId=        (users' bid requests, UserBids)
//	POST /_sim/bid          {"productId","amount","bidder"}
//	POST /_sim/close?productId=
//	POST /_sim/drop?productId=
//	POST /_sim/stall?productId=&on=true
//	POST /_sim/slow-drip?productId=&on=true
//	POST /_sim/fail-streams?productId=&n=&status=
//	POST /_sim/fail-snapshots?productId=&n=&status=
//	POST /_sim/raw          {"productId","event","data"}
//	POST /_sim/wire         a Wire as JSON
//
// Product id 0 means every product where the method allows it.
func (s *Simulator) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/auctions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Auctions())
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		id, err := queryID(r, true)
		if err != nil {
			writeControlError(w, err)
			return
		}
		st, err := s.Stats(id)
		if err != nil {
			writeControlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /_sim/user-bids", s.serveUserBids)
	mux.HandleFunc("POST /_sim/bid", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ProductID int64  `json:"productId"`
			Amount    int    `json:"amount"`
			Bidder    string `json:"bidder"`
		}
		if err := readJSON(r, &req); err != nil {
			writeControlError(w, err)
			return
		}
		control(w, s.EmitBid(req.ProductID, req.Amount, req.Bidder))
	})
	mux.HandleFunc("POST /_sim/raw", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ProductID int64  `json:"productId"`
			Event     string `json:"event"`
			Data      string `json:"data"`
		}
		if err := readJSON(r, &req); err != nil {
			writeControlError(w, err)
			return
		}
		control(w, s.SendRaw(req.ProductID, req.Event, req.Data))
	})
	mux.HandleFunc("POST /_sim/wire", func(w http.ResponseWriter, r *http.Request) {
		var wire Wire
		if err := readJSON(r, &wire); err != nil {
			writeControlError(w, err)
			return
		}
		control(w, s.SetWire(wire))
	})
	mux.HandleFunc("POST /_sim/close", s.withID(false, s.CloseLot))
	mux.HandleFunc("POST /_sim/drop", s.withID(true, s.DropStreams))
	mux.HandleFunc("POST /_sim/stall", flagHandler(s.Stall))
	mux.HandleFunc("POST /_sim/slow-drip", flagHandler(s.SlowDrip))
	mux.HandleFunc("POST /_sim/fail-streams", failuresHandler(s.FailStreams))
	mux.HandleFunc("POST /_sim/fail-snapshots", failuresHandler(s.FailSnapshots))
}

// errBadControl marks a malformed control request (400, not 404).
var errBadControl = errors.New("bad control request")

func (s *Simulator) withID(allowAll bool, f func(int64) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := queryID(r, allowAll)
		if err != nil {
			writeControlError(w, err)
			return
		}
		control(w, f(id))
	}
}

// flagHandler serves a fault switched by ?on=true|false.
func flagHandler(set func(id int64, on bool) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := queryID(r, true)
		if err != nil {
			writeControlError(w, err)
			return
		}
		on, err := strconv.ParseBool(r.URL.Query().Get("on"))
		if err != nil {
			writeControlError(w, fmt.Errorf("%w: on must be true or false", errBadControl))
			return
		}
		control(w, set(id, on))
	}
}

// failuresHandler serves a fault armed by ?n=&status=.
func failuresHandler(f func(id int64, n, status int) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := queryID(r, true)
		if err != nil {
			writeControlError(w, err)
			return
		}
		q := r.URL.Query()
		n, err1 := strconv.Atoi(q.Get("n"))
		status, err2 := strconv.Atoi(q.Get("status"))
		if err1 != nil || err2 != nil {
			writeControlError(w, fmt.Errorf("%w: n and status must be integers", errBadControl))
			return
		}
		control(w, f(id, n, status))
	}
}

// queryID reads ?productId=; allowAll accepts 0 or absent for every product.
func queryID(r *http.Request, allowAll bool) (int64, error) {
	v := r.URL.Query().Get("productId")
	if allowAll && (v == "" || v == "0") {
		return 0, nil
	}
	id, err := parseProductID(v)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errBadControl, err)
	}
	return id, nil
}

const maxControlBody = 64 << 20 // room for a 10 MiB raw payload, JSON-escaped

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", errBadControl, err)
	}
	return nil
}

func control(w http.ResponseWriter, err error) {
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func writeControlError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, errUnknownLot):
		status = http.StatusNotFound
	case errors.Is(err, errAuctionEnded):
		status = http.StatusGone
	case errors.Is(err, errSimulatorDown):
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "cannot encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
