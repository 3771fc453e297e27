/* Shared by both dashboards: number formatting, the JSON API, coalesced rendering and the live
   connection (Socket.IO with a "live"/"reconnecting" badge and 5 s polling while disconnected). */
"use strict";

window.SF = (() => {
  const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  const compact = new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 2,
  });
  const whole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const dollars = new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", minimumFractionDigits: 0, maximumFractionDigits: 0,
  });
  const decimal = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const percent = new Intl.NumberFormat("en-US", {
    style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1,
  });
  const DASH = "–";
  const POLL_MS = 5000;

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const fmt = {
    money: (v) => (isNum(v) ? money.format(v) : DASH),
    signedMoney: (v) => (isNum(v) ? (v > 0 ? "+" : "") + money.format(v) : DASH),
    compactMoney: (v) => (isNum(v) ? compact.format(v) : DASH),
    dollars: (v) => (isNum(v) ? dollars.format(v) : DASH),
    int: (v) => (isNum(v) ? whole.format(v) : DASH),
    signedInt: (v) => (isNum(v) ? (v > 0 ? "+" : "") + whole.format(v) : DASH),
    dec: (v) => (isNum(v) ? decimal.format(v) : DASH),
    pct: (v) => (isNum(v) ? percent.format(v) : DASH),
    signedPct: (v) => (isNum(v) ? (v > 0 ? "+" : "") + percent.format(v) : DASH),
    time: (iso) => (iso ? iso.slice(11, 19) : DASH),
    minute: (iso) => (iso ? iso.slice(11, 16) : DASH),
  };

  /** Colour a node by the sign of a number. */
  function sign(node, v) {
    node.classList.toggle("pos", isNum(v) && v > 0);
    node.classList.toggle("neg", isNum(v) && v < 0);
    return node;
  }

  /** A table cell; `cls` "num" right-aligns, `signed` colours by sign. */
  function cell(text, { cls = "", signed = null } = {}) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    if (signed !== null) sign(td, signed);
    return td;
  }

  function row(cells, attrs = {}) {
    const tr = document.createElement("tr");
    for (const [k, v] of Object.entries(attrs)) tr.dataset[k] = v;
    tr.append(...cells);
    return tr;
  }

  /** Replace a tbody's rows; show the `empty` note when there are none. */
  function fill(tbody, rows, emptyId) {
    tbody.replaceChildren(...rows);
    if (emptyId) document.getElementById(emptyId).hidden = rows.length > 0;
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  /** GET a JSON API path; 401 sends the browser to the login page. */
  async function api(path) {
    const r = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (r.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      throw new ApiError(401, "logged out");
    }
    let body = null;
    try { body = await r.json(); } catch (_) { body = null; }
    if (!r.ok) throw new ApiError(r.status, (body && body.error && body.error.message) || r.statusText);
    return body;
  }

  /** Show (or with null, hide) the banner under the header. */
  function banner(message) {
    const node = document.getElementById("banner");
    node.textContent = message || "";
    node.hidden = !message;
  }

  /** Report a failed load in the banner rather than leaving the page silently stale. */
  function failed(err) {
    if (err && err.status === 401) return;
    banner(err && err.status === 503 ? "Data temporarily unavailable; retrying." :
      "Could not load data: " + (err && err.message ? err.message : err));
  }

  /** Wrap fn so that it runs at most once per `ms`, trailing, with the latest state. */
  function coalesce(fn, ms) {
    let last = 0;
    let timer = null;
    return () => {
      if (timer) return;
      timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, Math.max(0, last + ms - Date.now()));
    };
  }

  /** Connect Socket.IO; `events` maps event names to handlers, `poll` reloads from the API.
      Counts each event received in data-events-<name> on <body> (the browser tests read it). */
  function live(events, poll) {
    const badge = document.getElementById("live-badge");
    let timer = null;
    const state = (s) => { badge.dataset.state = s; badge.textContent = s; document.body.dataset.live = s; };
    const startPolling = () => { if (!timer) timer = setInterval(poll, POLL_MS); };
    const stopPolling = () => { clearInterval(timer); timer = null; };
    if (typeof window.io !== "function") { state("reconnecting"); startPolling(); return null; }
    const socket = window.io({ transports: ["websocket"] });  // the server runs several workers: no polling
    let connectedBefore = false;  // the page loads its data itself; catch up only after a gap
    socket.on("connect", () => {
      state("live");
      stopPolling();
      if (connectedBefore) poll();
      connectedBefore = true;
    });
    socket.on("disconnect", () => { state("reconnecting"); startPolling(); });
    socket.on("connect_error", () => {
      state("reconnecting");
      startPolling();
      // a refused connection (e.g. server restarted) is not retried by the client itself
      if (!socket.active) setTimeout(() => socket.connect(), POLL_MS);
    });
    for (const [name, handler] of Object.entries(events)) {
      const key = "events" + name[0].toUpperCase() + name.slice(1);
      socket.on(name, (payload) => {
        document.body.dataset[key] = String(Number(document.body.dataset[key] || 0) + 1);
        handler(payload);
      });
    }
    return socket;
  }

  /** Chart.js defaults shared by every chart: no animation (live data), compact fonts. */
  function chartDefaults() {
    if (!window.Chart) return false;
    window.Chart.defaults.animation = false;
    window.Chart.defaults.maintainAspectRatio = false;
    window.Chart.defaults.font.size = 11;
    window.Chart.defaults.color = "#6b7685";
    return true;
  }

  /** "2026-12-07 14:34:09 UTC" from an ISO time. */
  const stamp = (iso) => (iso ? iso.replace("T", " ").slice(0, 19) + " UTC" : DASH);

  /** Say in `#market-clock` what clock the page's "today" follows: the market's (the latest price
      tick), which the generator simulates; shown plainly when it is not the wall clock. */
  function drawClock(clock) {
    const node = document.getElementById("market-clock");
    if (!node || !clock) return;
    let text = "";
    if (clock.source === "wall_clock") {
      text = "No price tick recorded yet: today follows this server's clock.";
    } else if (clock.simulated) {
      const behind = clock.behind_wall_clock_seconds;
      const away = Math.abs(behind);
      const gap = away >= 172800 ? `${Math.round(away / 86400)} days`
        : away >= 5400 ? `${Math.round(away / 3600)} h` : `${Math.round(away / 60)} min`;
      text = `Simulated market clock: market time ${stamp(clock.now)}, market day ${clock.day} ` +
        `(${gap} ${behind >= 0 ? "behind" : "ahead of"} the wall clock, ${stamp(clock.wall_clock).slice(11)}). ` +
        "Today, day P&L and the charts follow the market's day.";
    }
    node.textContent = text;
    node.hidden = !text;
    document.body.dataset.marketDay = clock.day;
    document.body.dataset.simulated = String(clock.simulated);
  }

  const colors = { accent: "#2f6fed", muted: "#b8c2d0", pos: "#1e9e5a", neg: "#c0392b", line: "#e3e7ee" };

  return {
    fmt, sign, cell, row, fill, api, banner, failed, coalesce, live, chartDefaults, colors, isNum, stamp,
    drawClock,
  };
})();
