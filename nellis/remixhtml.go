package nellis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Remix renders loader data into the product page in one of two ways:
// single fetch streams turbo-stream text through
// window.__remixContext.streamController.enqueue("<chunk>") calls, one per
// <script>, and older pages assigned the whole context as plain JSON to
// window.__remixContext = {"state":{"loaderData":…}}.
const (
	enqueueCall   = "window.__remixContext.streamController.enqueue("
	remixContext  = "window.__remixContext"
	scriptOpenTag = "<script"
	scriptEndTag  = "</script"
)

// DecodeSnapshotHTML decodes the product page. Every enqueue argument is read
// with a JSON decoder (a chunk may contain `")`), the chunks are joined in
// order and decoded as turbo-stream, and the product is taken from the
// product route's loader data. A page with only the older plain-JSON
// context is read from its state.loaderData. A page with neither is an
// error wrapping ErrNoData.
//
// Chunks that are plain nested JSON instead of turbo-stream's flat index
// encoding (a fixture some scrapers test with, which no Remix version
// writes) are rejected as malformed rather than guessed at.
func DecodeSnapshotHTML(body []byte, wantID int64) (Snapshot, error) {
	if err := checkWantID(wantID); err != nil {
		return Snapshot{}, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Snapshot{}, fmt.Errorf("nellis: html snapshot: %w: empty body", ErrNoData)
	}
	page, err := scanRemixPage(body)
	if err != nil {
		return Snapshot{}, fmt.Errorf("nellis: html snapshot: %w", err)
	}
	var p Patch
	switch {
	case page.stream.Len() > 0:
		p, err = streamedProduct(page.stream.Bytes(), wantID)
		if errors.Is(err, ErrNoData) && page.legacyRoute != nil {
			p, err = routeProduct(page.legacyRoute, wantID)
		}
	case page.legacyRoute != nil:
		p, err = routeProduct(page.legacyRoute, wantID)
	default:
		err = fmt.Errorf("%w: page has no Remix loader data", ErrNoData)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("nellis: html snapshot: %w", err)
	}
	return Snapshot{Patch: p, Format: FormatHTML}, nil
}

// remixPage is what the <script> elements of a page hold.
type remixPage struct {
	stream      bytes.Buffer // the enqueued turbo-stream chunks, joined
	legacyRoute any          // state.loaderData[productRoute] of a plain-JSON context
}

// scanRemixPage reads every <script> element's text.
func scanRemixPage(body []byte) (*remixPage, error) {
	page := &remixPage{}
	rest := body
	for {
		start := indexFold(rest, scriptOpenTag)
		if start < 0 {
			return page, nil
		}
		rest = rest[start+len(scriptOpenTag):]
		tagEnd := bytes.IndexByte(rest, '>')
		if tagEnd < 0 {
			return page, nil
		}
		rest = rest[tagEnd+1:]
		end := indexFold(rest, scriptEndTag)
		if end < 0 {
			end = len(rest)
		}
		if err := page.readScript(rest[:end]); err != nil {
			return nil, err
		}
		rest = rest[end:]
	}
}

// readScript collects the enqueue chunks and any plain-JSON context of one
// script.
func (page *remixPage) readScript(script []byte) error {
	for rest := script; ; {
		i := bytes.Index(rest, []byte(enqueueCall))
		if i < 0 {
			break
		}
		rest = rest[i+len(enqueueCall):]
		chunk, n, err := readStringArgument(rest)
		if err != nil {
			return fmt.Errorf("%w: enqueue argument: %w", ErrMalformed, err)
		}
		page.stream.WriteString(chunk)
		rest = rest[n:]
	}
	if page.legacyRoute == nil {
		page.legacyRoute = legacyContextRoute(script)
	}
	return nil
}

// readStringArgument reads a JSON string literal and the closing parenthesis
// after it, returning the string and the bytes consumed.
func readStringArgument(b []byte) (string, int, error) {
	lead := len(b) - len(bytes.TrimLeft(b, " \t\r\n"))
	dec := json.NewDecoder(bytes.NewReader(b[lead:]))
	var s string
	if err := dec.Decode(&s); err != nil {
		return "", 0, fmt.Errorf("not a JSON string literal (%s): %v", excerpt(b[lead:]), err)
	}
	n := lead + int(dec.InputOffset())
	after := bytes.TrimLeft(b[n:], " \t\r\n")
	if len(after) == 0 || after[0] != ')' {
		return "", 0, fmt.Errorf("string literal not followed by ')' (%s)", excerpt(after))
	}
	return s, len(b) - len(after) + 1, nil
}

// legacyContextRoute finds `window.__remixContext = {…}` in a script and
// returns its state.loaderData[productRoute], or nil. Single-fetch pages
// assign a context too, without state; that is not an error.
func legacyContextRoute(script []byte) any {
	for rest := script; ; {
		i := bytes.Index(rest, []byte(remixContext))
		if i < 0 {
			return nil
		}
		rest = rest[i+len(remixContext):]
		after := bytes.TrimLeft(rest, " \t\r\n")
		if len(after) < 2 || after[0] != '=' || after[1] == '=' {
			continue
		}
		value := bytes.TrimLeft(after[1:], " \t\r\n")
		if len(value) == 0 || value[0] != '{' {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(value))
		dec.UseNumber()
		var ctx struct {
			State struct {
				LoaderData map[string]any `json:"loaderData"`
			} `json:"state"`
		}
		if err := dec.Decode(&ctx); err != nil {
			continue
		}
		if route, ok := ctx.State.LoaderData[productRoute]; ok && !isAbsent(route) {
			return route
		}
	}
}

// streamedProduct decodes the joined turbo-stream of a page and finds the
// product route's loader data: in loaderData at the root, as Remix 2 single
// fetch writes it, or under state.loaderData.
func streamedProduct(stream []byte, wantID int64) (Patch, error) {
	root, err := decodeTurboStream(stream)
	if err != nil {
		return Patch{}, err
	}
	if redirect, ok := root.(*Redirect); ok {
		return Patch{}, redirect
	}
	ctx, ok := root.(map[string]any)
	if !ok {
		return Patch{}, fmt.Errorf("%w: stream root is %s, want an object", ErrNoData, describe(root))
	}
	if _, ok := ctx["loaderData"]; !ok {
		if state, ok := ctx["state"].(map[string]any); ok {
			ctx = state
		}
	}
	if errs, ok := ctx["errors"].(map[string]any); ok {
		if err, ok := errs[productRoute].(error); ok {
			return Patch{}, fmt.Errorf("route error: %w", err)
		}
	}
	loaderData, ok := ctx["loaderData"].(map[string]any)
	if !ok {
		return Patch{}, fmt.Errorf("%w: stream has no loaderData", ErrNoData)
	}
	route, ok := loaderData[productRoute]
	if !ok {
		return Patch{}, fmt.Errorf("%w: loaderData has no route %s", ErrNoData, productRoute)
	}
	return routeProduct(route, wantID)
}

// indexFold is bytes.Index ignoring ASCII case, for a needle whose first
// byte has no case ('<'), so that offsets stay those of s.
func indexFold(s []byte, needle string) int {
	for i := 0; i < len(s); i++ {
		j := bytes.IndexByte(s[i:], needle[0])
		if j < 0 {
			return -1
		}
		i += j
		if len(s)-i >= len(needle) && strings.EqualFold(string(s[i:i+len(needle)]), needle) {
			return i
		}
	}
	return -1
}
