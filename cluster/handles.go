package cluster

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handles returns the connection and its JetStream API, for the users'
// store and the bid hand-over (package clusterusers), which keep their
// own buckets and subjects under the same prefix; nil before Connect.
func (b *JetStream) Handles() (*nats.Conn, jetstream.JetStream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nc, b.js
}
