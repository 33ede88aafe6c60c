package module

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The README rows whose setting has another JSON name in the app.
var jsonNameOf = map[string]string{
	"auth_token": "users",    // the user named "default"
	"user":       "users",    // one of them
	"bidding":    "disabled", // `bidding off` is disabled: true
	"bid_buffer": "buffer",   // the JSON name came first
}

// readmeSettings reads the rows of README.md's table of the `nellis` global
// option: each subdirective with the placeholder of its argument.
func readmeSettings(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "### Global option `nellis`\n")
	if !ok {
		t.Fatal("README.md has no section for the nellis global option")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	row := regexp.MustCompile("^\\| `([a-z_]+) ?([^`]*)` \\|")
	rows := make(map[string]string)
	for _, line := range strings.Split(table, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			rows[m[1]] = strings.ReplaceAll(m[2], `\|`, "|")
		}
	}
	if len(rows) < 40 {
		t.Fatalf("read only %d settings from README.md's table", len(rows))
	}
	return rows
}

// sampleOf is a valid argument for a setting whose placeholder's sample
// (sampleArgs) is below the setting's minimum.
var sampleOf = map[string]string{"bid_retention": "48h"}

// sampleArgs is a valid argument for a README placeholder.
func sampleArgs(placeholder string) string {
	switch {
	case strings.Contains(placeholder, "|"):
		return strings.Split(placeholder, "|")[0]
	case placeholder == "<duration>":
		return "7s"
	case placeholder == "<size>":
		return "3KiB"
	case placeholder == "<url>":
		return "http://127.0.0.1:9"
	case placeholder == "<key>":
		return strings.Repeat("ab", 32)
	case placeholder == "<token>":
		return "another-long-enough-token"
	case placeholder == "<name> <token>":
		return "bob bobs-long-enough-token"
	case placeholder == "<nats-url...> {…}":
		return "nats://127.0.0.1:4222"
	case strings.HasPrefix(placeholder, "{"): // a block: jwt
		return "{\n\t\t\thmac_key a-key-long-enough-for-hmac-sha-256-tokens\n\t\t}"
	case placeholder == "<file>":
		return "testdata/upstream-ca.pem" // a PEM certificate
	}
	return "3" // <n>, <dollars>
}

// appSettings lists the JSON names of the app's settings: every field with
// a JSON name, through the upstream, relay and bidding objects and the
// package configs embedded in them.
func appSettings(typ reflect.Type, into map[string]bool) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || (!f.IsExported() && !f.Anonymous):
		case f.Anonymous && name == "":
			appSettings(f.Type, into)
		case slices.Contains([]string{"upstream", "relay", "bidding"}, name):
			appSettings(f.Type, into)
		case name != "":
			into[name] = true
		}
	}
}

// TestEverySettingHasItsThreePlaces: each row of README.md's table is a
// Caddyfile subdirective that sets the Config field of the same JSON name,
// and every such field has a row. This is what makes "Adding a setting" in
// docs/architecture.md true.
func TestEverySettingHasItsThreePlaces(t *testing.T) {
	rows := readmeSettings(t)
	fields := make(map[string]bool)
	appSettings(reflect.TypeFor[App](), fields)
	documented := make(map[string]bool)
	for name, placeholder := range rows {
		key := name
		if k, ok := jsonNameOf[name]; ok {
			key = k
		}
		documented[key] = true
		if !fields[key] {
			t.Errorf("README row %q: no Config field has the JSON name %q", name, key)
			continue
		}
		args := sampleArgs(placeholder)
		if a, ok := sampleOf[name]; ok {
			args = a
		}
		src := "{\n\tnellis {\n\t\tuser alice alices-long-enough-token\n\t\t" + name + " " + args + "\n\t}\n}\n"
		cfg, err := adapt(t, src)
		if err != nil {
			t.Errorf("README row %q: the Caddyfile refuses %q: %v", name, name+" "+args, err)
			continue
		}
		if !setsKey(cfg["apps"].(map[string]any)["nellis"], key) {
			t.Errorf("README row %q: the Caddyfile case does not set the JSON field %q", name, key)
		}
	}
	for key := range fields {
		if !documented[key] {
			t.Errorf("Config field with JSON name %q has no row in README.md", key)
		}
	}
}

// setsKey reports whether key is present in the app's JSON, at any depth.
func setsKey(v any, key string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for k, sub := range m {
		if k == key || setsKey(sub, key) {
			return true
		}
	}
	return false
}
