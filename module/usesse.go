package module

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// SSEShare is the `use_sse` setting: the percent of lots followed by SSE,
// the others by polling alone. `on` is 100, `off` 0 and `5%` five: which
// lots is a stable hash of the product id (hub.InSSEShare), so a lot keeps
// its side across reloads and a larger share only adds lots. A bare number
// is refused: `use_sse 1` has always meant on, so `use_sse 5` would be
// ambiguous. In JSON it is true, false, or a string such as "5%".
type SSEShare float64

// parseSSEShare reads on/off (with parseSwitch's synonyms) or a percent
// with its sign, from 0% to 100% in steps of 0.01%.
func parseSSEShare(raw string) (SSEShare, error) {
	if num, ok := strings.CutSuffix(raw, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
			return 0, fmt.Errorf("want a percent from 0%% to 100%%, got %q", raw)
		}
		// The hash splits lots in hundredths of a percent.
		return SSEShare(math.Round(p*100) / 100), nil
	}
	on, err := parseSwitch(raw)
	if err != nil {
		return 0, fmt.Errorf("want on, off or a percent of lots such as 5%%, got %q", raw)
	}
	if on {
		return 100, nil
	}
	return 0, nil
}

// MarshalJSON writes on and off as true and false, a share as "5%".
func (s SSEShare) MarshalJSON() ([]byte, error) {
	switch s {
	case 100:
		return []byte("true"), nil
	case 0:
		return []byte("false"), nil
	}
	return json.Marshal(strconv.FormatFloat(float64(s), 'f', -1, 64) + "%")
}

// UnmarshalJSON reads true, false, or a string use_sse takes in the
// Caddyfile ("on", "off", "5%").
func (s *SSEShare) UnmarshalJSON(b []byte) error {
	var on bool
	if err := json.Unmarshal(b, &on); err == nil {
		*s = 0
		if on {
			*s = 100
		}
		return nil
	}
	var raw string
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("use_sse: want true, false or a string such as \"5%%\", got %s", b)
	}
	v, err := parseSSEShare(raw)
	if err != nil {
		return fmt.Errorf("use_sse: %w", err)
	}
	*s = v
	return nil
}
