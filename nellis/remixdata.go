package nellis

import (
	"bytes"
	"fmt"
)

// DecodeSnapshotData decodes the single-fetch .data answer, turbo-stream v2
// shaped {"routes/p.$title.$productId._index":{"data":{"product":…}}}. A
// redirect (the 202 answer) is an error wrapping *Redirect; a route that
// failed is an error wrapping *ErrorResponse (such as a 404) or
// *RemoteError (a 500); an empty body wraps ErrNoData.
func DecodeSnapshotData(body []byte, wantID int64) (Snapshot, error) {
	if err := checkWantID(wantID); err != nil {
		return Snapshot{}, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Snapshot{}, fmt.Errorf("nellis: data snapshot: %w: empty body", ErrNoData)
	}
	root, err := decodeTurboStream(body)
	if err != nil {
		return Snapshot{}, fmt.Errorf("nellis: data snapshot: %w", err)
	}
	if redirect, ok := root.(*Redirect); ok {
		return Snapshot{}, fmt.Errorf("nellis: data snapshot: %w", redirect)
	}
	routes, ok := root.(map[string]any)
	if !ok {
		return Snapshot{}, fmt.Errorf("nellis: data snapshot: %w: root is %s, want an object of routes", ErrNoData, describe(root))
	}
	result, ok := routes[productRoute].(map[string]any)
	if !ok {
		return Snapshot{}, fmt.Errorf("nellis: data snapshot: %w: no result for route %s", ErrNoData, productRoute)
	}
	// A route result is {"data":…} or {"error":…}.
	if routeErr, ok := result["error"]; ok && !isAbsent(routeErr) {
		if err, ok := routeErr.(error); ok {
			return Snapshot{}, fmt.Errorf("nellis: data snapshot: route error: %w", err)
		}
		return Snapshot{}, fmt.Errorf("nellis: data snapshot: %w: route error %s", ErrMalformed, describe(routeErr))
	}
	p, err := routeProduct(result["data"], wantID)
	if err != nil {
		return Snapshot{}, fmt.Errorf("nellis: data snapshot: %w", err)
	}
	return Snapshot{Patch: p, Format: FormatData}, nil
}
