// The probe's service worker speaks to the gateway as the real extension
// does: connect, authenticate, startMonitoring, ping every 25 s, reconnect
// every 5 s. What it sees goes to chrome.storage for status.html to show.
// config.js (written by the test) sets GATEWAY_WS, TOKEN and LOT.
importScripts("config.js");

let socket = null;
let next = 1;

function record(patch) {
  chrome.storage.local.get({ opened: 0, closed: 0 }, (have) => {
    const update = Object.assign({}, patch);
    if (patch.openedInc) update.opened = have.opened + 1;
    if (patch.closedInc) update.closed = have.closed + 1;
    delete update.openedInc;
    delete update.closedInc;
    chrome.storage.local.set(update);
  });
}

function send(msg) {
  msg.requestId = "req_" + next++;
  socket.send(JSON.stringify(msg));
}

function connect() {
  socket = new WebSocket(GATEWAY_WS);
  socket.onopen = () => {
    record({ openedInc: true, state: "open", since: Date.now() });
    send({ type: "authenticate", token: TOKEN });
  };
  socket.onclose = (ev) => {
    record({ closedInc: true, state: "closed", lastClose: ev.code });
    setTimeout(connect, 5000);
  };
  socket.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "authenticated" && msg.success) {
      record({ authenticated: true });
      send({
        type: "startMonitoring",
        auctionId: String(LOT),
        config: { maxBid: 1, strategy: "sniping", incrementAmount: 1, autoBid: false },
        metadata: { source: "extension", title: "e2e", url: "https://www.nellisauction.com/p/x/" + LOT, imageUrl: null, timestamp: Date.now() },
      });
    }
    if (msg.type === "auctionState" && msg.auction && msg.auction.data) {
      record({ price: msg.auction.data.currentBid, source: msg.auction.source || "", seen: Date.now() });
    }
    if (msg.type === "heartbeat") {
      record({ heartbeat: Date.now() });
    }
  };
}

setInterval(() => {
  if (socket && socket.readyState === WebSocket.OPEN) send({ type: "ping" });
}, 25000);

connect();
