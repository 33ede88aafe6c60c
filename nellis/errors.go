package nellis

import "errors"

// ErrMalformed marks a payload that is not in a shape Nellis is known to send:
// not JSON, not an object, or a field with an unusable value.
var ErrMalformed = errors.New("malformed payload")

// ErrNoData marks a payload or response that carries no usable product data:
// an empty body, an object without any known field, a page without loader
// data, a product without a price. It never comes with a zero-filled Patch.
var ErrNoData = errors.New("no product data")

// ErrWrongProduct marks a snapshot of another product than the one asked for.
var ErrWrongProduct = errors.New("snapshot is for another product")
