// Package nellissim is a Nellis Auction simulator: the test bed for every
// other part of the gateway and the demo a newcomer sees.
//
// It speaks Nellis's wire as docs/protocol.md, Upstream: Nellis, describes it, written from the
// spec and on purpose independent of the gateway's own decoders (package
// nellis), so tests that pit one against the other are not circular:
//
//	GET  /live-products?productId={id}        SSE stream, one per product
//	GET  /p/{slug}/{id}?_data=<route>         the old Remix JSON snapshot
//	GET  /p/{slug}/{id}.data                  turbo-stream v2 single fetch
//	GET  /p/{slug}/{id}                       the product page HTML
//	POST /api/bids                            proxy bidding with soft close
//
// Tests drive it through Go methods or the same controls over HTTP under
// /_sim/: emit bids, close lots, read counters and each lot's users' bid
// requests (BidRequests, /_sim/bids), and inject faults (dropped,
// stalled, failing or trickling streams, raw payloads, wire variants).
//
// Auction time comes from Config.Now, so tests move lots towards their close
// with a fake clock; network deadlines and tickers use real time.
package nellissim
