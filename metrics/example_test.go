package metrics_test

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nellis-edge/gateway/metrics"
	"github.com/nellis-edge/gateway/sseupstream"
)

// The Caddy glue keeps one Metrics for the process and registers it into
// each config's registry; the hub and the relay take its hooks.
func Example() {
	m := metrics.New()
	if err := m.Register(prometheus.NewRegistry()); err != nil { // ctx.GetMetricsRegistry()
		fmt.Println(err)
		return
	}
	hubHooks := m.HubHooks() // into hub.Deps.Hooks
	_ = m.RelayHooks()       // into wsrelay's options

	hubHooks.StreamUp(42)
	hubHooks.StreamEvent(42, sseupstream.Connected)
	hubHooks.StreamEvent(42, sseupstream.Bid)

	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(m.SSE())
	// Output:
	// {
	//   "connections": {
	//     "total": 1,
	//     "successful": 1,
	//     "failed": 0,
	//     "active": 0,
	//     "success_rate": 100
	//   },
	//   "events": {
	//     "total": 2,
	//     "by_type": {
	//       "event_type=bid_update": 1,
	//       "event_type=connected": 1
	//     },
	//     "processing_time": {
	//       "count": 0,
	//       "sum": 0,
	//       "avg": 0,
	//       "min": 0,
	//       "max": 0,
	//       "p50": 0,
	//       "p95": 0,
	//       "p99": 0,
	//       "help": "Time to process SSE events in milliseconds",
	//       "sample_count": 0
	//     }
	//   },
	//   "reliability": {
	//     "reconnection_attempts": 0,
	//     "fallback_activations": 0,
	//     "error_count": 0
	//   }
	// }
}
