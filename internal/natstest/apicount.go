package natstest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
)

// APIRequests counts the JetStream API requests every client sends to a
// server, by kind ("CONSUMER.CREATE", "DIRECT.GET", ...): what a change
// costs the server, which timing alone would not show.
type APIRequests struct {
	mu     sync.Mutex
	byKind map[string]int
}

// CountAPI counts from now on the API requests sent to the server at url.
func CountAPI(t testing.TB, url string) *APIRequests {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c := &APIRequests{byKind: map[string]int{}}
	if _, err := nc.Subscribe("$JS.API.>", func(m *nats.Msg) {
		kind := strings.Join(strings.SplitN(m.Subject, ".", 5)[2:4], ".")
		c.mu.Lock()
		c.byKind[kind]++
		c.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Take returns the count so far, in all and by kind, and starts again
// from zero.
func (c *APIRequests) Take() (total int, kinds string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	total, kinds = c.summaryLocked()
	clear(c.byKind)
	return total, kinds
}

// Total is the count so far.
func (c *APIRequests) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total, _ := c.summaryLocked()
	return total
}

// String is the count so far, in all and by kind.
func (c *APIRequests) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	total, kinds := c.summaryLocked()
	return fmt.Sprintf("%d (%s)", total, kinds)
}

func (c *APIRequests) summaryLocked() (total int, kinds string) {
	parts := make([]string, 0, len(c.byKind))
	for k, n := range c.byKind {
		total += n
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(parts)
	return total, strings.Join(parts, ", ")
}
