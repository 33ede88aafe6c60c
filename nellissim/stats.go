package nellissim

// Stats counts what clients asked of the simulator, per product or in total.
type Stats struct {
	// StreamRequests counts `/live-products` requests, failed ones included.
	StreamRequests int64 `json:"streamRequests"`
	// StreamsOpened counts streams that were answered 200.
	StreamsOpened int64 `json:"streamsOpened"`
	// StreamsOpen is how many streams are open now.
	StreamsOpen int `json:"streamsOpen"`
	// StreamsDropped counts streams ended because they could not keep up.
	StreamsDropped int64 `json:"streamsDropped"`
	// Snapshots counts product snapshot requests by the format asked for.
	Snapshots SnapshotCounts `json:"snapshotRequests"`
	// BidRequests counts `POST /api/bids` requests, refused ones included.
	BidRequests int64 `json:"bidRequests"`
}

// SnapshotCounts counts snapshot requests per route.
type SnapshotCounts struct {
	JSON int64 `json:"json"` // `?_data=`
	Data int64 `json:"data"` // `.data`
	HTML int64 `json:"html"` // the page
}

func (a *Stats) add(b Stats) {
	a.StreamRequests += b.StreamRequests
	a.StreamsOpened += b.StreamsOpened
	a.StreamsOpen += b.StreamsOpen
	a.StreamsDropped += b.StreamsDropped
	a.Snapshots.JSON += b.Snapshots.JSON
	a.Snapshots.Data += b.Snapshots.Data
	a.Snapshots.HTML += b.Snapshots.HTML
	a.BidRequests += b.BidRequests
}

// Stats returns the counters of product id, or the totals for id 0.
func (s *Simulator) Stats(id int64) (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lots, err := s.targetsLocked(id)
	if err != nil {
		return Stats{}, err
	}
	var total Stats
	for _, l := range lots {
		st := l.stats
		st.StreamsOpen = len(l.streams)
		total.add(st)
	}
	return total, nil
}

// countSnapshot records one snapshot request for the route format.
func (l *lot) countSnapshot(format string) {
	switch format {
	case SnapshotJSON:
		l.stats.Snapshots.JSON++
	case SnapshotData:
		l.stats.Snapshots.Data++
	case SnapshotHTML:
		l.stats.Snapshots.HTML++
	}
}
