package nellis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Snapshot formats: the three ways the site serves a product (docs/protocol.md,
// Snapshots), and "auto" for a client that tries them in turn.
const (
	FormatAuto = "auto"
	FormatJSON = "json" // legacy ?_data= JSON
	FormatData = "data" // single-fetch .data route, turbo-stream
	FormatHTML = "html" // the product page, turbo-stream in <script> tags
)

// productRoute is the Remix route id of the product page.
const productRoute = "routes/p.$title.$productId._index"

// Snapshot is the full state of a product as one fetch saw it.
type Snapshot struct {
	// Patch holds every field the snapshot carries; a field the site did not
	// send is nil, never zero.
	Patch Patch
	// Format is the format it was decoded from: FormatJSON, FormatData or
	// FormatHTML.
	Format string
	// ServerDate is the response's Date header, zero when absent; with
	// ReceivedAt it estimates the offset between Nellis's clock and ours.
	ServerDate time.Time
	// ReceivedAt is when the response headers arrived, by the local clock.
	ReceivedAt time.Time
}

// DecodeSnapshotJSON decodes the legacy ?_data= answer:
// {"product":{…},"bidHistory":[…]}. An empty body, which the site sends
// since it moved to single fetch, is an error wrapping ErrNoData.
func DecodeSnapshotJSON(body []byte, wantID int64) (Snapshot, error) {
	if err := checkWantID(wantID); err != nil {
		return Snapshot{}, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Snapshot{}, fmt.Errorf("nellis: json snapshot: %w: empty body", ErrNoData)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return Snapshot{}, fmt.Errorf("nellis: json snapshot %s: %w: not JSON: %v", excerpt(body), ErrMalformed, err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return Snapshot{}, fmt.Errorf("nellis: json snapshot %s: %w: JSON %s, want an object", excerpt(body), ErrMalformed, jsonKind(v))
	}
	product, ok := root["product"]
	if !ok || isAbsent(product) {
		return Snapshot{}, fmt.Errorf("nellis: json snapshot %s: %w: no \"product\" field", excerpt(body), ErrNoData)
	}
	p, err := productPatch(product, wantID)
	if err != nil {
		return Snapshot{}, fmt.Errorf("nellis: json snapshot: %w", err)
	}
	return Snapshot{Patch: p, Format: FormatJSON}, nil
}

func checkWantID(id int64) error {
	if id <= 0 {
		return fmt.Errorf("nellis: invalid product id %d", id)
	}
	return nil
}

// routeProduct takes the product out of the product route's loader data,
// {"product":{…},"bidHistory":[…]}, or returns the error the route holds.
func routeProduct(route any, wantID int64) (Patch, error) {
	if err, ok := route.(error); ok {
		return Patch{}, fmt.Errorf("route error: %w", err)
	}
	o, ok := route.(map[string]any)
	if !ok || isAbsent(route) {
		return Patch{}, fmt.Errorf("%w: route data is %s, want an object", ErrNoData, describe(route))
	}
	product, ok := o["product"]
	if !ok || isAbsent(product) {
		return Patch{}, fmt.Errorf("%w: route data has no product", ErrNoData)
	}
	return productPatch(product, wantID)
}

// productPatch turns a product object into a full Patch, checking that it is
// the product asked for and that it has a price.
func productPatch(v any, wantID int64) (Patch, error) {
	raw, ok := v.(map[string]any)
	if !ok {
		if err, isErr := v.(error); isErr {
			return Patch{}, fmt.Errorf("product: %w", err)
		}
		return Patch{}, fmt.Errorf("%w: product is %s, want an object", ErrNoData, describe(v))
	}
	o := object(raw)
	key, idv, ok := o.first("id")
	if !ok {
		return Patch{}, fmt.Errorf("%w: product has no id", ErrNoData)
	}
	id, valid := idValue(idv)
	if !valid {
		return Patch{}, fmt.Errorf("%w: product %s %s is not a product id", ErrWrongProduct, key, describe(idv))
	}
	if id != wantID {
		return Patch{}, fmt.Errorf("%w: got product %d, want %d", ErrWrongProduct, id, wantID)
	}
	p := Patch{ProductID: id}
	key, price, ok := o.first("currentPrice", "currentBid")
	if !ok {
		return Patch{}, fmt.Errorf("%w: product %d has no currentPrice", ErrNoData, id)
	}
	var err error
	if p.CurrentBid, err = amountPtr(key, price); err != nil {
		return Patch{}, err
	}
	if err := readProductFields(o, &p); err != nil {
		return Patch{}, fmt.Errorf("product %d: %w", id, err)
	}
	return p, nil
}

// readProductFields reads everything but the id and the price.
func readProductFields(o object, p *Patch) error {
	var err error
	if key, v, ok := o.first("title"); ok {
		s, err := textField(key, v)
		if err != nil {
			return err
		}
		p.Title = &s
	}
	if key, v, ok := o.first("retailPrice"); ok {
		if p.RetailPrice, err = amountPtr(key, v); err != nil {
			return err
		}
	}
	if key, v, ok := o.first("bidCount"); ok {
		if p.BidCount, err = countPtr(key, v); err != nil {
			return err
		}
	}
	if key, v, ok := o.first("bidderCount"); ok {
		if p.BidderCount, err = countPtr(key, v); err != nil {
			return err
		}
	}
	closed := false
	if key, v, ok := o.first("isClosed"); ok {
		if closed, err = boolField(key, v); err != nil {
			return err
		}
	}
	if key, v, ok := o.first("marketStatus"); ok {
		s, err := textField(key, v)
		if err != nil {
			return err
		}
		p.MarketStatus = &s
		closed = closed || !marketOpen(s)
	}
	p.IsClosed = &closed
	if key, v, ok := o.first("closeTime"); ok {
		t, err := timeField(key, v)
		if err != nil {
			return err
		}
		p.CloseTime = &t
	}
	interval := DefaultExtensionInterval
	if key, v, ok := o.first("extensionInterval"); ok {
		if interval, err = countField(key, v); err != nil {
			return err
		}
	}
	p.ExtensionInterval = &interval
	if _, v, ok := o.first("location"); ok {
		// The location is shown, not interpreted: keep it as JSON, and drop
		// it rather than fail the snapshot if it holds something JSON cannot
		// say (NaN, a Map) or is absurdly large.
		if b, err := marshalBounded(v); err == nil {
			p.Location = b
		}
	}
	if key, v, ok := o.first("inventoryNumber"); ok {
		s, err := textField(key, v)
		if err != nil {
			return err
		}
		p.InventoryNumber = &s
	}
	if url := firstPhotoURL(o["photos"]); url != "" {
		p.ImageURL = &url
	}
	return readUserState(o, p)
}

// readUserState reads userState{isWinning,isWatching,nextBid} into p.User.
// It is only present with the user's cookies and is that user's alone, so
// the public next and minimum bid are always the price plus one dollar, the
// site's increment at every price (docs/protocol.md, Snapshots).
func readUserState(o object, p *Patch) error {
	p.NextBid = ptr(*p.CurrentBid + 1)
	p.MinimumBid = ptr(*p.NextBid)
	raw, ok := o["userState"].(map[string]any)
	if !ok {
		return nil
	}
	us := object(raw)
	var u UserState
	if key, v, ok := us.first("isWinning"); ok {
		b, err := boolField("userState."+key, v)
		if err != nil {
			return err
		}
		u.IsWinning = &b
	}
	if key, v, ok := us.first("isWatching"); ok {
		b, err := boolField("userState."+key, v)
		if err != nil {
			return err
		}
		u.IsWatching = &b
	}
	if key, v, ok := us.first("nextBid"); ok {
		next, err := amountPtr("userState."+key, v)
		if err != nil {
			return err
		}
		u.NextBid = next
	}
	if u != (UserState{}) {
		p.User = &u
	}
	return nil
}

// firstPhotoURL returns the url of the first photo, which is either
// {"url":…} or a bare string; anything else yields "".
func firstPhotoURL(photos any) string {
	list, ok := photos.([]any)
	if !ok || len(list) == 0 {
		return ""
	}
	switch photo := list[0].(type) {
	case string:
		return photo
	case map[string]any:
		url, _ := photo["url"].(string)
		return url
	}
	return ""
}

// marketOpen reports whether a marketStatus means bidding is open. The
// documented "active" is open too, as Product.Over treats it.
func marketOpen(status string) bool {
	s := strings.ToLower(strings.TrimSpace(status))
	return s == "open" || s == "active"
}
