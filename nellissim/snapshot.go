package nellissim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// productRoute is the Remix route whose loader returns the product; its id
// is the literal `_data` value and the key of the single-fetch payload.
const productRoute = "routes/p.$title.$productId._index"

// userCookie names the bidder on every request that has user state: the
// simulator's stand-in for a Nellis session.
const userCookie = "sim_user"

// serveProduct is `GET /p/{slug}/{id}` in its three forms: `?_data=` JSON,
// the `{id}.data` turbo-stream and the HTML page. The slug is ignored, as on
// the site.
func (s *Simulator) serveProduct(w http.ResponseWriter, r *http.Request) {
	rawID := r.PathValue("id")
	route := SnapshotHTML
	switch {
	case strings.HasSuffix(rawID, ".data"):
		route, rawID = SnapshotData, strings.TrimSuffix(rawID, ".data")
	case r.URL.Query().Has("_data"):
		route = SnapshotJSON
	}
	id, err := parseProductID(rawID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	user := userFrom(r)

	s.mu.Lock()
	l, err := s.lotLocked(id)
	if err != nil {
		s.mu.Unlock()
		s.notFound(w, route)
		return
	}
	l.countSnapshot(route)
	status := l.faults.failSnapshots.take()
	if status == 0 {
		status = s.faults.failSnapshots.take()
	}
	var body any
	if status == 0 {
		body = s.snapshotLocked(l, route, user)
	}
	s.mu.Unlock()

	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	switch route {
	case SnapshotJSON:
		s.writeJSONSnapshot(w, r, body)
	case SnapshotData:
		s.writeDataSnapshot(w, body)
	case SnapshotHTML:
		s.writeHTMLSnapshot(w, body)
	}
}

// snapshotLocked builds the value tree the route serves.
func (s *Simulator) snapshotLocked(l *lot, route, user string) any {
	data := object{{"product", s.productLocked(l, user)}, {"bidHistory", bidHistory(l)}}
	switch route {
	case SnapshotJSON:
		return data
	case SnapshotData:
		return object{{productRoute, object{{"data", data}}}}
	}
	var userValue any
	if user != "" {
		userValue = object{{"name", user}}
	}
	related := make([]any, 0, len(s.lots))
	for _, o := range s.lots {
		if o != l && !o.closed && len(related) < 4 {
			related = append(related, object{{"id", o.id}, {"title", o.title}})
		}
	}
	page := append(data, field{"related", promise{related}})
	return object{
		{"loaderData", object{
			{"root", object{{"user", userValue}, {"shoppingLocation", l.location.value()}}},
			{productRoute, page},
		}},
		{"actionData", nil},
		{"errors", nil},
	}
}

// productLocked is the `product` object the site's loader returns, with
// userState for the bidder named by the request's cookie.
func (s *Simulator) productLocked(l *lot, user string) object {
	status := "open"
	if l.closed {
		status = "closed"
	}
	photos := make([]any, len(l.photos))
	for i, p := range l.photos {
		photos[i] = object{{"url", p}}
	}
	_, hasBid := l.maxes[user]
	return object{
		{"id", l.id},
		{"title", l.title},
		{"inventoryNumber", l.inventoryNumber},
		{"currentPrice", l.price},
		{"retailPrice", l.retailPrice},
		{"bidCount", l.bidCount},
		{"bidderCount", len(l.maxes)},
		{"marketStatus", status},
		{"isClosed", l.closed},
		{"closeTime", l.closeTime},
		{"extensionInterval", s.cfg.ExtensionInterval},
		{"projectExtended", l.extended},
		{"openTime", l.openTime},
		{"location", l.location.value()},
		{"photos", photos},
		{"userState", object{
			{"nextBid", l.nextBid()},
			{"isWinning", user != "" && l.leader == user},
			{"isWatching", user != "" && hasBid},
			{"isAllowedToBid", user != "" && !l.closed},
		}},
	}
}

// bidHistory lists the bids newest first, names masked as on the site.
func bidHistory(l *lot) []any {
	out := make([]any, 0, len(l.history))
	for i := len(l.history) - 1; i >= 0; i-- {
		b := l.history[i]
		kind := "Outbid"
		if i == len(l.history)-1 {
			kind = "Winning"
		}
		out = append(out, object{
			{"time", b.at},
			{"name", maskName(b.bidder)},
			{"amount", fmt.Sprintf("$%d.00", b.amount)},
			{"type", kind},
		})
	}
	return out
}

// writeJSONSnapshot answers `?_data=`: the old JSON unless the site has
// moved to single fetch, where it is 200 with an empty body.
func (s *Simulator) writeJSONSnapshot(w http.ResponseWriter, r *http.Request, body any) {
	if s.cfg.SnapshotFormat != SnapshotJSON {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	if r.URL.Query().Get("_data") != productRoute {
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "Route not found"})
		return
	}
	b, err := appendJSON(nil, body)
	if err != nil {
		s.internalError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

// writeDataSnapshot answers `{id}.data` with turbo-stream v2.
func (s *Simulator) writeDataSnapshot(w http.ResponseWriter, body any) {
	if s.cfg.SnapshotFormat == SnapshotHTML {
		s.notFound(w, SnapshotData)
		return
	}
	lines, err := encodeTurboStream(body)
	if err != nil {
		s.internalError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/x-script")
	_, _ = w.Write([]byte(strings.Join(lines, "")))
}

// writeHTMLSnapshot answers the product page: its turbo-stream travels in
// `streamController.enqueue("…")` calls, one per line, as Remix streams it.
func (s *Simulator) writeHTMLSnapshot(w http.ResponseWriter, body any) {
	if s.cfg.SnapshotFormat == SnapshotData {
		s.notFound(w, SnapshotHTML)
		return
	}
	lines, err := encodeTurboStream(body)
	if err != nil {
		s.internalError(w, err)
		return
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Nellis Auction</title></head><body><div id=\"root\"></div>\n")
	b.WriteString(`<script>window.__remixContext = {"basename":"/","future":{"v3_singleFetch":true},"isSpaMode":false};` +
		`window.__remixContext.stream = new ReadableStream({start(controller){window.__remixContext.streamController = controller;}}).pipeThrough(new TextEncoderStream());</script>` + "\n")
	for _, line := range lines {
		// json.Marshal escapes <, > and & so no line can end the script.
		lit, err := json.Marshal(line)
		if err != nil {
			s.internalError(w, err)
			return
		}
		fmt.Fprintf(&b, "<script>window.__remixContext.streamController.enqueue(%s);</script>\n", lit)
	}
	b.WriteString("<script>window.__remixContext.streamController.close();</script>\n</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

// notFound answers a missing product the way each route would.
func (s *Simulator) notFound(w http.ResponseWriter, route string) {
	switch route {
	case SnapshotData:
		lines, _ := encodeTurboStream(object{{productRoute, object{{"error", errorResponse{"Not Found", 404, ""}}}}})
		w.Header().Set("Content-Type", "text/x-script")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(strings.Join(lines, "")))
	case SnapshotJSON:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n")
	}
}

func (s *Simulator) internalError(w http.ResponseWriter, err error) {
	s.logger.Error("snapshot encoding failed", zap.Error(err))
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// userFrom returns the bidder named by the sim_user cookie, or "".
func userFrom(r *http.Request) string {
	c, err := r.Cookie(userCookie)
	if err != nil {
		return ""
	}
	return c.Value
}
