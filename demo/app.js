// The demo client: it speaks to /ws exactly as the Chrome extension does
// (authenticate, startMonitoring, then listen for auctionState pushes).
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token") || "demo-token";
const maxLots = Number(params.get("lots") || 6);
const wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

const lots = new Map(); // auction id -> {el, state, lastChange}
let socket = null;
let nextRequest = 1;
let updates = 0;

document.getElementById("ws-url").textContent = wsURL;

// In the cluster demo (make demo-cluster) each gateway answers /_node
// with its name; the single-node demo has no such route and shows none.
fetch("/_node")
  .then((res) => (res.ok ? res.text() : ""))
  .then((name) => {
    if (!name) return;
    const el = document.getElementById("node");
    el.textContent = "node " + name;
    el.hidden = false;
    document.title = "Nellis Edge · node " + name;
  })
  .catch(() => {});

function setConn(state, text) {
  const el = document.getElementById("conn");
  el.dataset.state = state;
  document.getElementById("conn-text").textContent = text;
}

function send(msg) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    msg.requestId = "req_" + nextRequest++;
    socket.send(JSON.stringify(msg));
  }
}

function connect() {
  setConn("connecting", "connecting…");
  socket = new WebSocket(wsURL);
  socket.onopen = () => send({ type: "authenticate", token });
  socket.onclose = () => {
    setConn("down", "disconnected, retrying…");
    setTimeout(connect, 2000);
  };
  socket.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    handle(msg);
  };
}

function handle(msg) {
  switch (msg.type) {
    case "authenticated":
      if (msg.success) {
        setConn("live", "live");
        startMonitoring();
      } else {
        setConn("down", "authentication failed: " + (msg.error || "unknown"));
      }
      break;
    case "monitoredAuctions":
      // After authenticating, the user's list arrives with each lot's
      // latest state: draw it at once rather than wait for a change.
      (msg.auctions || []).forEach(render);
      break;
    case "auctionState":
      render(msg.auction);
      break;
    case "error":
      console.warn("gateway error:", msg.error);
      break;
  }
}

// startMonitoring asks for the simulator's open lots (through the demo
// site's /_sim proxy) and monitors the first few, like a user clicking
// "monitor" on each product page.
async function startMonitoring() {
  let auctions = [];
  try {
    const res = await fetch("/_sim/auctions");
    const body = await res.json();
    auctions = Array.isArray(body) ? body : (body.auctions || []);
  } catch (err) {
    console.warn("listing simulated auctions:", err);
  }
  auctions
    .filter((a) => !a.isClosed)
    .slice(0, maxLots)
    .forEach((a) => send({
      type: "startMonitoring",
      auctionId: String(a.id),
      config: { maxBid: 1, strategy: "sniping", incrementAmount: 1, autoBid: false },
      metadata: { source: "demo", title: a.title, url: "https://www.nellisauction.com/p/x/" + a.id, imageUrl: null, timestamp: Date.now() },
    }));
}

function render(auction) {
  if (!auction || !auction.id) return;
  let lot = lots.get(auction.id);
  // A state without data (the feed has no snapshot yet) never blanks what
  // the page already shows.
  if (!auction.data && lot && lot.state && lot.state.data) {
    auction = Object.assign({}, auction, { data: lot.state.data });
  }
  const data = auction.data || {};
  if (!lot) {
    const el = document.getElementById("lot-template").content.firstElementChild.cloneNode(true);
    document.getElementById("lots").appendChild(el);
    document.getElementById("empty").hidden = true;
    el.dataset.id = auction.id;
    lot = { el, price: null };
    lots.set(auction.id, lot);
  }
  lot.state = auction;
  lot.lastChange = Date.now();
  const el = lot.el;
  el.querySelector(".title").textContent = data.title || auction.title || "Lot " + auction.id;
  const price = data.currentBid ?? auction.currentBid ?? null;
  const priceEl = el.querySelector(".price");
  priceEl.textContent = price == null ? "–" : "$" + Number(price).toLocaleString();
  if (lot.price !== null && price !== lot.price) {
    priceEl.classList.remove("flash");
    void priceEl.offsetWidth; // restart the animation
    priceEl.classList.add("flash");
  }
  lot.price = price;
  el.querySelector(".bids").textContent = data.bidCount ?? "–";
  el.querySelector(".bidders").textContent = data.bidderCount ?? "–";
  el.querySelector(".last-bidder").textContent = data.lastBidder || "–";
  const source = auction.source || data.updateSource || "";
  const srcEl = el.querySelector(".source");
  srcEl.textContent = source || "…";
  srcEl.className = "source src" + (source ? " src-" + source : "");
  el.classList.toggle("ended", auction.status === "ended" || data.isClosed === true);
  updates++;
  document.getElementById("stats").textContent = updates + " updates";
  tick();
}

function formatLeft(ms) {
  if (ms <= 0) return "closing";
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h > 0) return h + "h " + String(m).padStart(2, "0") + "m";
  return m + "m " + String(sec).padStart(2, "0") + "s";
}

// tick redraws what changes with time alone: time left and freshness.
function tick() {
  const now = Date.now();
  for (const lot of lots.values()) {
    const a = lot.state, data = a.data || {};
    const ended = a.status === "ended" || data.isClosed === true;
    const left = lot.el.querySelector(".time-left");
    const close = data.closeTime ? Date.parse(data.closeTime) : NaN;
    if (ended) {
      left.textContent = "ended";
      left.classList.remove("closing");
    } else if (!Number.isNaN(close)) {
      left.textContent = formatLeft(close - now);
      left.classList.toggle("closing", close - now < 60000);
    } else {
      left.textContent = "–";
    }
    const health = lot.el.querySelector(".health");
    const age = Math.round((now - lot.lastChange) / 1000);
    health.dataset.state = ended ? "ended" : age < 60 ? "fresh" : "quiet";
    const seq = a.seq != null ? " · seq " + a.seq : "";
    health.querySelector(".health-text").textContent =
      (ended ? "closed" : "updated " + age + " s ago") + seq;
  }
}

setInterval(tick, 250);
connect();
