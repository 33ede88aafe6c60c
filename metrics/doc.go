// Package metrics counts what the gateway does, for operators: Prometheus
// collectors named nellis_* and the predecessor's /metrics/sse JSON.
//
// One *Metrics lives for the whole process, beside the hub and the relay,
// so counts continue across config reloads. Caddy hands every config load
// a new registry; Register adds the same collectors to each one.
//
// Every label takes its value from a small fixed set. Product ids, user
// names and raw message types never become labels: they would grow the
// series without bound and leak who watches what.
package metrics
