package module

import (
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
)

var update = flag.Bool("update", false, "rewrite the golden adapt files")

// TestAdaptGolden adapts the repository's Caddyfiles and compares the JSON
// with the golden files in testdata (regenerate with -update).
func TestAdaptGolden(t *testing.T) {
	t.Setenv("NELLIS_AUTH_TOKEN", "golden-token")
	t.Setenv("NELLIS_COOKIE_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	t.Setenv("USE_SSE", "on")
	for _, name := range []string{"Caddyfile.example", "Caddyfile.demo"} {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("..", name))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".json")
			if *update {
				out, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt(src, nil)
				if err != nil {
					t.Fatal(err)
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, out, "", "\t"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !caddytest.CompareAdapt(t, name, string(src), "caddyfile", string(want)) {
				t.Errorf("adapting %s no longer gives %s (run go test ./module -run AdaptGolden -update and review the diff)", name, golden)
			}
		})
	}
}

// TestExampleServesMetricsOnlyOnLoopback: the metrics say how many users,
// sockets and lots the gateway has; the example must not publish them.
func TestExampleServesMetricsOnlyOnLoopback(t *testing.T) {
	t.Setenv("NELLIS_AUTH_TOKEN", "golden-token")
	t.Setenv("NELLIS_COOKIE_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	src, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
					Routes any      `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	found := 0
	for name, srv := range cfg.Apps.HTTP.Servers {
		n := countHandlers(srv.Routes, "metrics", "nellis_sse_metrics")
		if n == 0 {
			continue
		}
		found += n
		for _, addr := range srv.Listen {
			host, _, err := net.SplitHostPort(strings.TrimPrefix(addr, "tcp/"))
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				t.Errorf("server %s serves metrics on %s, not a loopback address", name, addr)
			}
		}
	}
	if found != 2 {
		t.Errorf("found %d metrics handlers, want /metrics and /metrics/sse", found)
	}
}

// countHandlers counts the handlers named one of names anywhere in v.
func countHandlers(v any, names ...string) int {
	n := 0
	switch v := v.(type) {
	case map[string]any:
		if h, ok := v["handler"].(string); ok && slices.Contains(names, h) {
			n++
		}
		for _, sub := range v {
			n += countHandlers(sub, names...)
		}
	case []any:
		for _, sub := range v {
			n += countHandlers(sub, names...)
		}
	}
	return n
}
