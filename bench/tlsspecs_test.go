package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The driver's scenario list: each TLS scenario right after its plain
// twin, the gateway's and the floor's; the shared-token scenarios after
// c10k, the one-product one beside its one-user-per-socket twin.
func TestSpecList(t *testing.T) {
	specs := withTLS(withFloor(withShared(loadSpecs(true))))
	var keys []string
	byKey := map[string]loadSpec{}
	for _, s := range specs {
		keys = append(keys, s.key)
		byKey[s.key] = s
	}
	want := []string{
		"c10", "tls-c10", "floor-c10", "floor-tls-c10",
		"c1k", "tls-c1k", "floor-c1k", "floor-tls-c1k",
		"c10k", "tls-c10k", "floor-c10k", "floor-tls-c10k",
		"shared-c10k", "c10k-1p", "shared-c10k-1p",
		"100k", "tls-100k", "floor-100k", "floor-tls-100k",
		"drop", "fallback",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys\n%v\nwant\n%v", keys, want)
	}
	for _, k := range keys {
		s := byKey[k]
		if s.tls != strings.Contains(k, "tls-") {
			t.Errorf("%s: tls = %v", k, s.tls)
		}
	}
	if p, tl := byKey["c1k"], byKey["tls-c1k"]; tl.clients != p.clients || tl.rate != p.rate || tl.window != p.window || tl.name != p.name+", TLS" {
		t.Errorf("tls-c1k %+v is not c1k %+v over TLS", tl, p)
	}
	if f := byKey["floor-tls-100k"]; !f.floor || !f.tls {
		t.Errorf("floor-tls-100k: floor %v, tls %v", f.floor, f.tls)
	}
	full := map[string]loadSpec{}
	for _, s := range withTLS(withFloor(loadSpecs(false))) {
		full[s.key] = s
	}
	if w := full["tls-100k"].window; w != 20*time.Second || full["100k"].window != time.Minute || full["tls-c1k"].window != full["c1k"].window {
		t.Errorf("full windows: tls-100k %s, 100k %s, tls-c1k %s, c1k %s; want TLS twins capped at 20s",
			w, full["100k"].window, full["tls-c1k"].window, full["c1k"].window)
	}
	for key, want := range map[string]struct{ users, products, perUser int }{
		"c10k":           {10_000, 10, 20},
		"shared-c10k":    {1, 10, 10_000},
		"c10k-1p":        {10_000, 1, 20},
		"shared-c10k-1p": {1, 1, 10_000},
	} {
		s := byKey[key]
		if s.clients != 10_000 || s.userCount() != want.users || s.products != want.products || s.socketsPerUser() != want.perUser {
			t.Errorf("%s: %d clients, %d users, %d products, %d sockets per user; want 10000, %d, %d, %d",
				key, s.clients, s.userCount(), s.products, s.socketsPerUser(), want.users, want.products, want.perUser)
		}
	}
}
