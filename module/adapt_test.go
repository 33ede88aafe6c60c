package module

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
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
