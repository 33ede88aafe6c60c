// Package wsrelay is the Chrome extension's side of the gateway: the
// WebSocket endpoint speaking the extension's protocol and the REST API it
// calls (docs/protocol.md), for many users, fed by the hub's per-product
// feeds. The sockets themselves (hijack, framing, writes, parking, pings,
// read limits and deadlines) are package wsconn's: the relay decides who
// may connect, what each message means and what each socket is sent. It
// knows nothing of Caddy: the module builds one Relay per app with
// New, keeps it across config reloads (UpdateConfig applies new settings to
// the open sockets), mounts ServeWS and APIHandler, and calls Shutdown.
//
// # Protocol additions
//
// The extension ignores fields and types it does not know, so the relay adds:
//   - auctionState.auction carries currentBid, nextBid, timeRemaining,
//     bidderCount and isClosed beside data (the in-page panel reads them
//     there), and seq, epoch, source and receivedAt (ms) of the change.
//   - {"type":"heartbeat","ts":<ms>} to a socket that has had no other
//     message for most of HeartbeatInterval, which keeps a Chrome MV3
//     service worker alive.
//   - {"type":"resume","auctions":{"<id>":{"epoch":"…","seq":n}},"requestId":…}
//     replays the missed changes as auctionState messages, in order; when the
//     feed no longer has them it sends the full state as an auctionState with
//     "recovered":false at the top level. Then it answers
//     {"type":"response","action":"resume","success":true,"data":{"auctions":
//     {"<id>":{"recovered":bool,"changes":n,"found":bool}}},"requestId":…}.
//   - config.snipeSeconds: an auction's own snipe window, whole seconds in
//     [1, 300]; absent means the engine's default.
//   - With an auto-bid engine (AutoBidHooks, ReportAutoBid),
//     auctionState.auction and each listed auction carry the user's auto-bid state as autoBid (status,
//     message, isWinning, maxBidReached and the last 100 bids); when the
//     engine stopped auto-bidding (its status error, e.g. refused cookies)
//     the auction's status is "error" and error and message say why. Every
//     new state is pushed as {"type":"autoBidState","auctionId":…,"state":…}
//     followed by the auction's auctionState.
//   - Close codes: 1001 on Shutdown, 1007 for a text frame that is not
//     UTF-8, 1008 for a sustained message flood, 1009 for an oversized
//     message, 4008 "slow" for a client that does not read, 1008 "token
//     expired" at the exp of the signed token (JWT, Config.JWT) a socket
//     signed in with.
//   - authenticate takes a signed token beside the users' tokens; a
//     refusal's error says why ("Invalid authentication token: token
//     expired").
//
// # Delivery
//
// A change's fields (data and the panel fields, timeRemaining computed at
// that moment from closeTime) are encoded once per fan-out; each user that
// monitors the product gets them copied around its own head (title, url,
// config, auto-bid state), framed in place as one WebSocket frame shared by
// that user's sockets; sockets that sent subscribe share a single
// auctionUpdate frame. The product's JSON from the hub is spliced in, never
// re-encoded. Frames are wsconn.Frames, counted: each socket sent one
// holds a reference until it has written or dropped it, and the buffer
// serves the next user only then. The feed's goroutine does the fan-out
// (deliver) and waits for it: from 32 monitored auctions of the product up
// it is split across the cores, and deliver returns when every part has
// written or queued.
//
// What Nellis says about one user (a snapshot's userState: isWinning,
// isWatching, nextBid and the minimumBid derived from it) reaches that user
// alone. The hub's shared change carries none of it; a snapshot fetched
// with a user's cookies (CookiesFor) brings theirs on the side, tagged with
// an opaque key, and the relay keeps it with that user's auctions. The
// fields are encoded once with the public values (not winning, not
// watching, the price plus one), which everyone else and every subscribe
// socket gets; for a user with their own state, the few bytes of those
// values are swapped for theirs while copying.
//
// A socket that keeps up gets its frame at once, with one non-blocking
// write(2) by whoever delivers it; only what the kernel does not take goes
// through the socket's bounded queue, in which a newer auctionState of an
// auction replaces an unsent older one, and its writer goroutine, which
// runs only while the queue is non-empty and writes it in vectored batches
// (wsconn). A write that exceeds WriteTimeout closes the socket with
// 4008. gorilla/websocket reads; only wsconn writes, the close frames
// gorilla would write included (see wsconn's package doc).
//
// # Memory
//
// An idle socket on plain TCP holds no goroutine: its reader parks it with
// the transport's idle poller, one epoll set for every socket, and ends;
// the poller starts a reader when the client sends something (wsconn's
// park.go). With its 512-byte read buffer and no write buffer, an idle
// socket costs 1.2 to 1.6 KB of heap (BenchmarkIdleConnMemory). Behind TLS terminated in the
// same process it is parked too when crypto/tls holds none of its input
// (about 5 KB with TLS's state; wsconn's BenchmarkIdleConnMemoryTLS); where
// epoll is missing, the reader waits inside gorilla in its goroutine instead.
//
// # Locking
//
// Relay.mu guards the relay's side of the users: their sockets and the
// delivery state of their monitored auctions (monitored: the encoded
// head, the auto-bid view, the user's own state of the lot, a version),
// the fan-out's index of those by product (Relay.monitors), the sockets
// and interest sets; a socket's own lock (in wsconn) guards its queue.
// Who the users are, their tokens, cookies, the auctions each monitors
// with their configs (so who monitors each product and who auto-bids),
// and the products each left (fair use) live in a users.Directory with
// its own leaf lock. The relay changes a user's auctions in the Directory
// and their delivery state together, holding Relay.mu, so the two agree.
// The order is interestMu, then an auction's sendMu, then Relay.mu, then
// the Directory's, each optional and never the other way; an auction's
// pushMu is a leaf. A delivery takes no Directory lock: it reads Relay.mu (read)
// and each auction's sendMu, as before the users moved out; the key of a
// user's state (user.stateKey) is copied under Relay.mu whenever the
// cookies change. No socket is written while Relay.mu is held: deliver,
// the pushes (push.go) and the sweeper copy the sockets they send to (and
// build their frames) under it, and send after releasing it, so one
// user's slow fan-out never holds up another's sign-in or request. A
// monitored auction's sendMu orders its states on its owner's sockets:
// deliverTo holds it from building a change's frame to sending it, a push
// or an answer from reading the feed's state to sending it, so a state
// read earlier never follows one read later (and a queued newer state is
// never replaced by an older one); no other auction's delivery needs it.
// pushMu guards the auction's waiting push (pendingPush).
// A push reads Feeds.State under sendMu, which is safe because a feed
// delivers outside its own locks; Feeds.Subscribe and unsubscribe are
// called without Relay.mu, under interestMu. AutoBidHooks are never
// called with Relay.mu held, because the engine reads the users back
// (AutoBidders, from the Directory). The engine's reported states are
// encoded once and kept with each auction, so fanning a change out never
// calls the engine. The users package takes no lock of the relay's: its
// StorageStore and Saver each guard their own state with a leaf mutex, and
// the Saver reads a user's record (Directory.Record) without holding its
// own.
//
// # Many sockets, one user
//
// Under one shared token (the old backend's AUTH_TOKEN) every extension
// signs in as the same user, thousands of sockets. A sign-in costs the
// same whatever their number: it answers its own socket (authenticated,
// the user's list) and adds it to the user's set. A startMonitoring
// that changes nothing the user sees answers its own socket alone. Every
// push to all of a user's sockets (a changed auction, an auto-bid report)
// is coalesced per auction (push.go): one waits at a time, and what is
// asked for meanwhile is sent with it, the latest state once per socket.
package wsrelay
