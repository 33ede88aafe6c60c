package main

import (
	"slices"
	"strings"
)

// tlsBases are the delivery scenarios also measured over TLS (issue 13),
// as "tls-<key>" against the gateway and "floor-tls-<key>" against the
// machine floor: the clients dial wss:// and verify the run's certificate.
var tlsBases = []string{"c10", "c1k", "c10k", "100k"}

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
