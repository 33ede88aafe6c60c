package main

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/nellis-edge/gateway/nellissim"
)

// basePrice is above any catalogue price, so the schedule's first bid on a
// lot takes the lead at once.
const basePrice = 100_000

// simulator is nellissim served on a loopback port of the driver process:
// Nellis is not part of the gateway, so its CPU must not count as the
// gateway's.
type simulator struct {
	*nellissim.Simulator
	srv *nellissim.Server
	url string
}

func startSimulator() (*simulator, error) {
	return serveSimulator(nellissim.Config{
		Seed:          1,
		Auctions:      40,
		AuctionLength: 24 * time.Hour, // no lot closes during a run
	}, nellissim.ServeOptions{})
}

// serveSimulator starts a simulator of cfg served as opts say.
func serveSimulator(cfg nellissim.Config, opts nellissim.ServeOptions) (*simulator, error) {
	sim := nellissim.New(cfg)
	sim.Start()
	srv, err := sim.Serve(opts)
	if err != nil {
		sim.Close()
		return nil, err
	}
	return &simulator{Simulator: sim, srv: srv, url: srv.URL}, nil
}

// products picks n lots, those closing last, so none closes mid-run.
func (s *simulator) products(n int) ([]int64, error) {
	lots := s.Auctions()
	if n > len(lots) {
		return nil, errors.New("simulator has too few lots")
	}
	slices.SortFunc(lots, func(a, b nellissim.Auction) int { return b.CloseTime.Compare(a.CloseTime) })
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = lots[i].ID
	}
	slices.SortFunc(ids, cmp.Compare)
	return ids, nil
}

// close ends the simulator's streams first (the server's Shutdown would
// wait for them) and then its server.
func (s *simulator) close() {
	s.Close()
	_ = s.srv.Close()
}
