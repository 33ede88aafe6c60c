package nellis

import (
	"fmt"
	"strconv"
)

// The Go types of turbo-stream values that have no plain Go equivalent.

// Undefined is JavaScript's undefined, which turbo-stream keeps apart from
// null. Readers of product data treat it as a missing field.
type Undefined struct{}

// MarshalJSON writes undefined as null, the closest JSON has.
func (Undefined) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

// Map is a decoded JavaScript Map, in insertion order. It is a list, not a Go
// map, because its keys may be objects.
type Map []MapEntry

// MapEntry is one key and value of a Map.
type MapEntry struct {
	Key   any
	Value any
}

// Set is a decoded JavaScript Set, in insertion order.
type Set []any

// UnresolvedPromise stands for a promise the stream never settled.
type UnresolvedPromise struct {
	ID int64
}

// RejectedPromise is a promise the stream settled with an "E<id>:" line.
type RejectedPromise struct {
	ID     int64
	Reason any
}

func (e *RejectedPromise) Error() string {
	if err, ok := e.Reason.(error); ok {
		return fmt.Sprintf("promise %d rejected: %v", e.ID, err)
	}
	return fmt.Sprintf("promise %d rejected with %s", e.ID, describe(e.Reason))
}

// RemoteError is an Error serialised by the server: turbo-stream's "E" tag,
// or Remix's "SanitizedError" (a loader that threw; 500).
type RemoteError struct {
	Name    string // the JavaScript error class, "Error" when not given
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("server error %s: %s", e.Name, e.Message)
}

// ErrorResponse is Remix's "ErrorResponse": a loader that threw a Response,
// such as a 404 for an unknown product.
type ErrorResponse struct {
	Status     int
	StatusText string
	Data       any
}

func (e *ErrorResponse) Error() string {
	msg := fmt.Sprintf("server error response %d", e.Status)
	if e.StatusText != "" {
		msg += " " + e.StatusText
	}
	if s, ok := e.Data.(string); ok && s != "" {
		msg += ": " + truncate(s, 80)
	}
	return msg
}

// Redirect is Remix's "SingleFetchRedirect": the loader redirected, and the
// .data route answered 202 with where to go instead.
type Redirect struct {
	Location   string
	Status     int
	Revalidate bool
	Reload     bool
	Replace    bool
}

func (e *Redirect) Error() string {
	return fmt.Sprintf("loader redirects (%d) to %s", e.Status, strconv.Quote(truncate(e.Location, 120)))
}

// Interface guards.
var (
	_ error = (*RemoteError)(nil)
	_ error = (*ErrorResponse)(nil)
	_ error = (*Redirect)(nil)
	_ error = (*RejectedPromise)(nil)
)
