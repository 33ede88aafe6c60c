package main

import (
	"slices"
	"strings"
	"time"
)

// tlsBases are the delivery scenarios also measured over TLS (issue 13),
// as "tls-<key>" against the gateway and "floor-tls-<key>" against the
// machine floor: the clients dial wss:// and verify the run's certificate.
var tlsBases = []string{"c10", "c1k", "c10k", "100k"}

// tlsWindow caps a TLS twin's measured window: 20 s holds 2,000,000
// deliveries at 100,000/s, plenty for a stable p99, and the 100k plain
// window's 60 s is for its own "sustained for 60 s" target, which TLS
// does not have.
const tlsWindow = 20 * time.Second

// withTLS puts each TLS scenario right after its plain twin, the gateway's
// and the floor's alike, so each pair meets the machine in about the same
// state; the report sets their p99s side by side (tlsreport.go).
func withTLS(specs []loadSpec) []loadSpec {
	var out []loadSpec
	for _, s := range specs {
		out = append(out, s)
		if s.tls || !slices.Contains(tlsBases, strings.TrimPrefix(s.key, "floor-")) {
			continue
		}
		t := s
		t.key, t.name, t.tls = tlsKey(s.key), s.name+", TLS", true
		t.window = min(s.window, tlsWindow)
		out = append(out, t)
	}
	return out
}

// tlsKey is the key of a scenario's TLS twin: tls-c1k, floor-tls-c1k.
func tlsKey(key string) string {
	if rest, ok := strings.CutPrefix(key, "floor-"); ok {
		return "floor-tls-" + rest
	}
	return "tls-" + key
}
