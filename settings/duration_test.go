package settings

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationReadsIntegersAndStrings(t *testing.T) {
	for raw, want := range map[string]time.Duration{
		`1500000000`: 1500 * time.Millisecond,
		`"1.5s"`:     1500 * time.Millisecond,
		`"250ms"`:    250 * time.Millisecond,
		`"1d"`:       24 * time.Hour,
		`"1.5d2h"`:   38 * time.Hour,
		`0`:          0,
	} {
		var d Duration
		if err := json.Unmarshal([]byte(raw), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s: got %v, %v; want %v", raw, time.Duration(d), err, want)
		}
	}
	for _, raw := range []string{`"soon"`, `"1x"`, `true`, `1.5`} {
		var d Duration
		if err := json.Unmarshal([]byte(raw), &d); err == nil {
			t.Errorf("%s: read as %v, want an error", raw, d)
		}
	}
}

func TestDurationWritesNanoseconds(t *testing.T) {
	out, err := json.Marshal(struct {
		D Duration `json:"d"`
	}{Duration(3 * time.Second)})
	if err != nil || string(out) != `{"d":3000000000}` {
		t.Fatalf("got %s, %v", out, err)
	}
}
