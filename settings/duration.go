// Package settings holds what the packages' Config structs share so that
// each setting is declared once, in the package that uses it, and the
// Caddy app can embed those structs as they are: a Duration that reads
// JSON as Caddy's does, without importing Caddy.
package settings

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that reads JSON the way caddy.Duration does:
// an integer of nanoseconds, or a string such as "1.5s", "250ms" or "1d"
// (a day being 24h). It writes an integer of nanoseconds, as caddy.Duration
// does, so a config adapted from a Caddyfile is the same either way.
type Duration time.Duration

// UnmarshalJSON reads an integer of nanoseconds or a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) == 0 {
		return io.EOF
	}
	var dur time.Duration
	var err error
	if b[0] == '"' && b[len(b)-1] == '"' {
		dur, err = ParseDuration(strings.Trim(string(b), `"`))
	} else {
		err = json.Unmarshal(b, &dur)
	}
	*d = Duration(dur)
	return err
}

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration is time.ParseDuration with one more unit, "d" for 24h, as
// Caddy's ParseDuration: "1d", "1.5d", "1d12h". Input over 1024 bytes is
// refused.
func ParseDuration(s string) (time.Duration, error) {
	if len(s) > 1024 {
		return 0, errors.New("parsing duration: input string too long")
	}
	var inNumber bool
	var numStart int
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == 'd' {
			days, err := strconv.ParseFloat(s[numStart:i], 64)
			if err != nil {
				return 0, err
			}
			s = s[:numStart] + strconv.FormatFloat(days*24, 'f', -1, 64) + "h" + s[i+1:]
			i--
			continue
		}
		if !inNumber {
			numStart = i
		}
		inNumber = (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '+'
	}
	return time.ParseDuration(s)
}
