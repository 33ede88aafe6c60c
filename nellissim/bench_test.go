package nellissim

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkBidFanout measures one bid reaching every one of 1,000 open
// streams of the same product, end to end over loopback HTTP.
func BenchmarkBidFanout(b *testing.B) {
	const streams = 1000
	sim := New(Config{Seed: 1, PingInterval: time.Hour})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()
	sim.Start()
	id := sim.Auctions()[0].ID

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen sync.WaitGroup // one Done per stream per bid
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: streams}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for range streams {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/live-products?productId=%d", srv.URL, id), nil)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "event: ch_product_bids") {
					seen.Done()
				}
			}
		}()
	}
	b.ResetTimer()
	for i := range b.N {
		seen.Add(streams)
		if err := sim.EmitBid(id, 100+i, fmt.Sprintf("r%d", i%2)); err != nil {
			b.Fatal(err)
		}
		seen.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(streams), "streams")
}
