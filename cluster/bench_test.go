package cluster

import (
	"testing"
	"time"
)

// BenchmarkAppend: one fenced append to the embedded server, the cost an
// owner adds to each change.
func BenchmarkAppend(b *testing.B) {
	n := startNATS(b)
	bus := n.bus("a")
	ctx := b.Context()
	var err error
	var at uint64
	rec := record(1, "e", 0)
	b.ResetTimer()
	for i := range b.N {
		rec.Seq = uint64(i + 1)
		rec.ReceivedAt = time.Now()
		if at, err = bus.Append(ctx, rec, at); err != nil {
			b.Fatal(err)
		}
	}
}
