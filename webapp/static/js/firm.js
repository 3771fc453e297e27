/* The firm dashboard: activity per minute, top symbols, buy/sell imbalance by symbol and sector,
   sector flows, most active users, pipeline health, the nightly views and the reconciliation.
   Loaded from /api/v1/firm/*, kept live by the `firm` event (activity and health); the flow tables
   are re-read at most every 10 s while events arrive. "Today" is the market's day (the latest price
   tick's, /api/v1/market/clock); the nightly panels show the last day whose session has ended, the
   one the nightly batch can have run for. */
"use strict";

(() => {
  const { fmt, sign, cell, row, fill, api, banner, failed, coalesce, live, colors, isNum, stamp, drawClock } =
    window.SF;
  const $ = (id) => document.getElementById(id);
  const state = {
    day: null, minutes: [], symbols: [], bySymbolNotional: [], sectors: [],
    topUsers: { trades: null, notional: null }, nightly: null, batches: [], lastBatchAge: null,
    loadedAt: Date.now(), sort: "trades", asOf: null, clock: null, nightlyDay: null,
  };
  const charts = { activity: null, symbolImbalance: null, sectorImbalance: null };

  // ---------------------------------------------------------------- loading

  async function loadFlows() {
    const [bySort, byNotional, sectors] = await Promise.all([
      api(`/api/v1/firm/symbols?sort=${state.sort}&limit=15`),
      state.sort === "notional" ? null : api("/api/v1/firm/symbols?sort=notional&limit=15"),
      api("/api/v1/firm/sectors")]);
    state.symbols = bySort.symbols;
    state.bySymbolNotional = byNotional ? byNotional.symbols : bySort.symbols;
    state.sectors = sectors.sectors;
    state.day = bySort.day;
  }

  // Each panel loads on its own: one failing view (say, nightly tables not migrated yet) leaves
  // the others current and shows its error in the banner.
  const loaders = [
    loadFlows,
    async () => { state.minutes = (await api("/api/v1/firm/activity")).minutes; },
    loadNightly,
    async () => {
      const health = await api("/api/v1/firm/health");
      state.batches = health.batches;
      state.lastBatchAge = health.last_batch_age_seconds;
      state.loadedAt = Date.now();
    },
  ];

  /** The clock first: the rankings, views and reconciliation are those of its last complete day. */
  async function loadNightly() {
    state.clock = await api("/api/v1/market/clock");
    const day = state.clock.last_complete_day;
    const [trades, notional, nightly] = await Promise.all([
      api(`/api/v1/firm/top-users?metric=trades&day=${day}`),
      api(`/api/v1/firm/top-users?metric=notional&day=${day}`), api(`/api/v1/firm/nightly?day=${day}`)]);
    Object.assign(state, { topUsers: { trades, notional }, nightly, nightlyDay: day });
  }

  async function loadAll() {
    const results = await Promise.allSettled(loaders.map((load) => load()));
    const failure = results.find((r) => r.status === "rejected");
    state.asOf = (state.clock && state.clock.now) || state.asOf;
    if (failure) failed(failure.reason); else banner(null);
    render();
  }

  const reloadFlows = coalesce(() => loadFlows().then(render, failed), 10000);

  function onFirm(ev) {
    if (ev.day && state.day && ev.day !== state.day) {  // the market moved into its next day
      state.day = ev.day;
      loadAll();
      return;
    }
    if (ev.minute) upsertMinute(ev.minute);
    if (ev.health && !state.batches.some((b) => b.batch_id === ev.health.batch_id)) {
      state.batches = [ev.health, ...state.batches].slice(0, 60);
      const finished = Date.parse(ev.health.finished_at);
      state.lastBatchAge = Number.isNaN(finished) ? 0 : Math.max(0, (Date.now() - finished) / 1000);
      state.loadedAt = Date.now();
    }
    state.asOf = ev.as_of || state.asOf;  // the market's time, never the browser's
    reloadFlows();
    render();
  }

  function upsertMinute(m) {
    const i = state.minutes.findIndex((x) => x.minute === m.minute);
    if (i >= 0) state.minutes[i] = m;
    else if (!state.minutes.length || state.minutes[state.minutes.length - 1].minute < m.minute) state.minutes.push(m);
  }

  // ---------------------------------------------------------------- rendering

  const render = coalesce(draw, 1000);

  function draw() {
    $("day").textContent = state.day || "–";
    $("as-of").textContent = state.asOf ? stamp(state.asOf).slice(11) : "–";
    drawClock(state.clock);
    for (const id of ["top-users-day", "nightly-day", "recon-day"]) {
      $(id).textContent = state.nightlyDay ? `of ${state.nightlyDay}` : "";
    }
    drawCards();
    drawActivity();
    drawSymbols();
    drawSectors();
    drawImbalance("symbolImbalance", "symbol-imbalance-chart", state.bySymbolNotional, "symbol");
    drawImbalance("sectorImbalance", "sector-imbalance-chart", state.sectors, "sector");
    drawTopUsers();
    drawBatches();
    drawNightly();
    drawReconciliation();
  }

  function drawCards() {
    const sum = (k) => state.minutes.reduce((acc, m) => acc + (m[k] || 0), 0);
    const last = state.minutes[state.minutes.length - 1];
    document.querySelector('[data-firm="trades"]').textContent = fmt.int(sum("trades"));
    document.querySelector('[data-firm="notional"]').textContent = fmt.compactMoney(sum("notional"));
    document.querySelector('[data-firm="active_users"]').textContent = last ? fmt.int(last.active_users) : "–";
    const b = state.batches[0];
    document.querySelector('[data-health="rate"]').textContent =
      b ? `${fmt.int(b.input_rows_per_second)} trades/s` : "–";
    document.querySelector('[data-health="lag"]').textContent = b && isNum(b.kafka_lag) ? fmt.int(b.kafka_lag) : "–";
    drawAge();
  }

  function drawAge() {
    const node = document.querySelector('[data-health="age"]');
    if (!isNum(state.lastBatchAge)) { node.textContent = "none yet"; return; }
    const age = state.lastBatchAge + (Date.now() - state.loadedAt) / 1000;
    node.textContent = age < 120 ? `${Math.round(age)} s ago` : `${Math.round(age / 60)} min ago`;
    node.classList.toggle("neg", age > 30);
  }

  function drawActivity() {
    $("activity-empty").hidden = state.minutes.length > 0;
    $("activity-chart").parentElement.hidden = state.minutes.length === 0;
    if (!window.Chart) return;
    const labels = state.minutes.map((m) => fmt.minute(m.minute));
    const trades = state.minutes.map((m) => m.trades);
    const notional = state.minutes.map((m) => m.notional);
    if (charts.activity) {
      charts.activity.data.labels = labels;
      charts.activity.data.datasets[0].data = trades;
      charts.activity.data.datasets[1].data = notional;
      charts.activity.update("none");
      return;
    }
    charts.activity = new window.Chart($("activity-chart"), {
      data: { labels, datasets: [
        { type: "bar", label: "Trades", data: trades, backgroundColor: colors.muted, yAxisID: "y" },
        { type: "line", label: "Notional", data: notional, borderColor: colors.accent, borderWidth: 2,
          pointRadius: 0, yAxisID: "y1" }] },
      options: {
        interaction: { mode: "index", intersect: false },
        plugins: { tooltip: { callbacks: { label: (c) => (c.dataset.yAxisID === "y1"
          ? `Notional: ${fmt.money(c.parsed.y)}` : `Trades: ${fmt.int(c.parsed.y)}`) } } },
        scales: {
          x: { ticks: { maxTicksLimit: 14 } },
          y: { position: "left", title: { display: true, text: "trades" } },
          y1: { position: "right", grid: { drawOnChartArea: false },
            ticks: { callback: (v) => fmt.compactMoney(v) }, title: { display: true, text: "notional" } },
        },
      },
    });
  }

  function imbalanceCell(v) {
    return cell(fmt.signedPct(v), { cls: "num", signed: v });
  }

  function drawSymbols() {
    fill(document.querySelector("#symbols tbody"), state.symbols.map((s) => row([
      cell(s.symbol), cell(s.sector), cell(fmt.int(s.trades), { cls: "num" }),
      cell(fmt.compactMoney(s.notional), { cls: "num" }),
      cell(fmt.signedInt(s.net_flow), { cls: "num", signed: s.net_flow }), imbalanceCell(s.imbalance),
    ], { symbol: s.symbol })), "symbols-empty");
  }

  function drawSectors() {
    fill(document.querySelector("#sectors tbody"), state.sectors.map((s) => row([
      cell(s.sector), cell(fmt.int(s.trades), { cls: "num" }), cell(fmt.compactMoney(s.notional), { cls: "num" }),
      cell(fmt.int(s.buy_volume), { cls: "num" }), cell(fmt.int(s.sell_volume), { cls: "num" }),
      cell(fmt.signedInt(s.net_flow), { cls: "num", signed: s.net_flow }), imbalanceCell(s.imbalance),
    ], { sector: s.sector })), "sectors-empty");
  }

  function drawImbalance(name, canvasId, items, key) {
    $(canvasId).parentElement.hidden = items.length === 0;
    $(canvasId.replace("-chart", "-empty")).hidden = items.length > 0;
    if (!window.Chart) return;
    const labels = items.map((x) => x[key]);
    const data = items.map((x) => x.imbalance);
    const bg = data.map((v) => (v >= 0 ? colors.pos : colors.neg));
    if (charts[name]) {
      Object.assign(charts[name].data, { labels });
      Object.assign(charts[name].data.datasets[0], { data, backgroundColor: bg });
      charts[name].update("none");
      return;
    }
    charts[name] = new window.Chart($(canvasId), {
      type: "bar",
      data: { labels, datasets: [{ label: "imbalance (buy - sell) / (buy + sell)", data, backgroundColor: bg,
        maxBarThickness: 22 }] },
      options: {
        indexAxis: "y",
        plugins: { legend: { display: false },
          tooltip: { callbacks: { label: (c) => `imbalance ${fmt.signedPct(c.parsed.x)}` } } },
        scales: { x: { min: -1, max: 1, ticks: { callback: (v) => fmt.pct(v) } } },
      },
    });
  }

  function drawTopUsers() {
    const { trades, notional } = state.topUsers;
    const missing = !trades || trades.status !== "ok";
    $("top-users-status").hidden = !missing;
    $("top-users-wrap").hidden = missing;
    const a = missing ? [] : trades.users;
    const b = notional && notional.status === "ok" ? notional.users : [];
    const rows = [];
    for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
      rows.push(row([
        cell(String(i + 1), { cls: "num" }),
        cell(a[i] ? String(a[i].user_id) : "", { cls: "num" }), cell(a[i] ? fmt.int(a[i].value) : "", { cls: "num" }),
        cell(b[i] ? String(b[i].user_id) : "", { cls: "num" }),
        cell(b[i] ? fmt.compactMoney(b[i].value) : "", { cls: "num" })]));
    }
    fill(document.querySelector("#top-users tbody"), rows);
  }

  function drawBatches() {
    fill(document.querySelector("#batches tbody"), state.batches.slice(0, 12).map((b) => row([
      cell(String(b.batch_id)), cell(fmt.time(b.finished_at)), cell(fmt.int(b.input_rows), { cls: "num" }),
      cell(fmt.int(b.input_rows_per_second), { cls: "num" }), cell(fmt.int(b.kafka_lag), { cls: "num" }),
      cell(fmt.int(b.dead_letters), { cls: "num", signed: b.dead_letters ? -1 : 0 }),
    ], { batchId: String(b.batch_id) })), "health-empty");
  }

  // Each nightly view as a person reads it: its columns, their units, the rows worth showing.
  // Money is in dollars; `share` and `imbalance` are fractions. A view not listed here is shown
  // with every metric, formatted by its name.
  const money = (v) => fmt.compactMoney(v);
  const VIEWS = {
    symbols: { title: "Symbols by notional", label: "Symbol", columns: [
      ["trades", "Trades", fmt.int], ["notional", "Notional", money],
      ["imbalance", "Imbalance", fmt.signedPct, true]] },
    sectors: { title: "Sectors by notional", label: "Sector", columns: [
      ["trades", "Trades", fmt.int], ["notional", "Notional", money],
      ["imbalance", "Imbalance", fmt.signedPct, true]] },
    minutes: { title: "Busiest minutes", label: "Minute (UTC)", busiest: "trades", columns: [
      ["trades", "Trades", fmt.int], ["notional", "Notional", money], ["active_users", "Users", fmt.int]] },
    portfolio_sizes: { title: "Users by portfolio size (gross value)", label: "Size", all: true,
      format: sizeLabel, chart: "share", columns: [["users", "Users", fmt.int], ["share", "Share", fmt.pct]] },
    holdings_count: { title: "Users by open positions", label: "Positions", all: true, columns: [
      ["users", "Users", fmt.int], ["share", "Share", fmt.pct]] },
    crowded_names: { title: "Most held names", label: "Symbol", columns: [
      ["holders", "Holders", fmt.int], ["share", "Of users", fmt.pct], ["short_holders", "Short", fmt.int]] },
    sector_exposure: { title: "Exposure by sector (market value)", label: "Sector", chart: "share",
      columns: [
      ["long", "Long", money], ["short", "Short", money], ["net", "Net", money, true],
      ["share", "Of gross", fmt.pct]] },
  };
  const ROWS = 10;
  const nightlyCharts = [];
  let drawnNightly = null;  // the response the views were last drawn from: redrawn only when it changes

  const bound = new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", notation: "compact", minimumFractionDigits: 0, maximumFractionDigits: 0,
  });

  /** "1000-5000" -> "$1K-$5K", "1000000+" -> "$1M+" */
  function sizeLabel(text) {
    return text.replace(/[0-9]+/g, (n) => bound.format(Number(n)));
  }

  function generic(name, v) {
    if (!isNum(v)) return "–";
    if (/notional|value|cash|pnl|exposure|long|short|net|gross/i.test(name)) return money(v);
    if (/weight|share|imbalance|ratio/i.test(name)) return fmt.pct(v);
    return Number.isInteger(v) ? fmt.int(v) : fmt.dec(v);
  }

  function specOf(name, rows) {
    if (VIEWS[name]) return VIEWS[name];
    const keys = rows.length ? Object.keys(rows[0].metrics) : [];
    return { title: name.replaceAll("_", " "), label: "", columns: keys.map((k) => [k, k.replaceAll("_", " "),
      (v) => generic(k, v)]) };
  }

  function shownRows(spec, rows) {
    if (spec.busiest) {
      return [...rows].sort((a, b) => (b.metrics[spec.busiest] || 0) - (a.metrics[spec.busiest] || 0))
        .slice(0, ROWS);
    }
    return spec.all ? rows : rows.slice(0, ROWS);
  }

  function labelText(spec, label) {
    if (spec.format) return spec.format(label);
    return /^[0-9]{4}-[0-9]{2}-[0-9]{2}T/.test(label) ? fmt.minute(label) : label;
  }

  function viewTable(name, rows) {
    const spec = specOf(name, rows);
    const box = document.createElement("div");
    box.className = "view";
    const title = document.createElement("h3");
    title.textContent = spec.title;
    const table = document.createElement("table");
    table.className = "data compact";
    const head = document.createElement("tr");
    for (const [text, cls] of [[spec.label, ""], ...spec.columns.map((c) => [c[1], "num"])]) {
      const th = document.createElement("th");
      th.textContent = text;
      if (cls) th.className = cls;
      head.append(th);
    }
    const thead = document.createElement("thead");
    thead.append(head);
    const tbody = document.createElement("tbody");
    tbody.append(...shownRows(spec, rows).map((r) => row([cell(labelText(spec, r.label)),
      ...spec.columns.map(([key, , format, signed]) => cell(format(r.metrics[key]),
        { cls: "num", signed: signed ? r.metrics[key] : null }))])));
    table.append(thead, tbody);
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.append(table);
    box.append(title);
    if (spec.chart && window.Chart) {
      const chartBox = document.createElement("div");
      chartBox.className = "chart-box short";
      const canvas = document.createElement("canvas");
      canvas.setAttribute("aria-label", spec.title);
      chartBox.append(canvas);
      box.append(chartBox);
    }
    box.append(wrap);
    box.dataset.view = name;
    return box;
  }

  /** A bar per row of the view: its share (of users, of the gross exposure), as a person would
      rather look at a distribution than read it. Drawn once the box is in the page (Chart.js sizes
      a chart from its container). */
  function viewChart(box, spec, rows) {
    const canvas = box.querySelector("canvas");
    if (!canvas) return;
    const labels = rows.map((r) => labelText(spec, r.label));
    const data = rows.map((r) => r.metrics[spec.chart] || 0);
    nightlyCharts.push(new window.Chart(canvas, {
      type: "bar",
      data: { labels,
        datasets: [{ label: spec.title, data, backgroundColor: colors.accent, maxBarThickness: 18 }] },
      options: {
        plugins: { legend: { display: false },
          tooltip: { callbacks: { label: (c) => fmt.pct(c.parsed.y) } } },
        scales: { y: { beginAtZero: true, ticks: { callback: (v) => fmt.pct(v) } },
          x: { ticks: { autoSkip: false, maxRotation: 60, minRotation: 0 } } },
      },
    }));
  }

  function drawNightly() {
    const n = state.nightly;
    const ok = n && n.status === "ok";
    $("nightly-status").hidden = ok;
    $("nightly-status").textContent = n
      ? `Not computed yet: the nightly batch has not run for ${n.day}, the last market day that has ` +
        "ended (run it with: bin/stockafolio nightly)."
      : "Not available right now (see the message at the top).";
    $("nightly-computed").textContent = ok && n.computed_at ? `(computed ${stamp(n.computed_at).slice(0, 16)} UTC)` : "";
    if (n === drawnNightly) return;
    drawnNightly = n;
    while (nightlyCharts.length) nightlyCharts.pop().destroy();
    const shown = ok ? Object.entries(n.views).filter(([, v]) => v.length) : [];
    const boxes = shown.map(([k, v]) => viewTable(k, v));
    $("nightly-views").replaceChildren(...boxes);
    shown.forEach(([k, v], i) => viewChart(boxes[i], specOf(k, v), v));
  }

  function drawReconciliation() {
    const target = $("reconciliation");
    const r = state.nightly && state.nightly.reconciliation;
    if (!r) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "Not computed yet: the nightly batch reconciles the stream with the archive once a " +
        "market day has ended.";
      target.replaceChildren(p);
      return;
    }
    const dl = document.createElement("dl");
    dl.className = "recon";
    const items = [["Status", r.status], ["Run at", stamp(r.run_at)],
      ["Users checked", fmt.int(r.users_checked)], ["Holdings checked", fmt.int(r.holdings_checked)],
      ["Mismatches", fmt.int(r.mismatches)], ["Repaired", fmt.int(r.repaired)]];
    for (const [k, v] of items) {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v;
      if (k === "Status") dd.className = r.mismatches ? "status-bad" : "status-ok";
      if (k === "Mismatches") sign(dd, -r.mismatches);
      const pair = document.createElement("div");  // one grid cell per label and value
      if (k === "Status") pair.className = "wide";
      pair.append(dt, dd);
      dl.append(pair);
    }
    const nodes = [dl];
    if (r.sample && r.sample.length) {
      const ul = document.createElement("ul");
      ul.className = "sample";
      for (const s of r.sample.slice(0, 10)) { const li = document.createElement("li"); li.textContent = s; ul.append(li); }
      nodes.push(ul);
    }
    target.replaceChildren(...nodes);
  }

  // ---------------------------------------------------------------- controls

  document.getElementById("symbol-sort").addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-sort]");
    if (!btn || btn.dataset.sort === state.sort) return;
    state.sort = btn.dataset.sort;
    for (const b of document.querySelectorAll("#symbol-sort button")) b.setAttribute("aria-pressed", String(b === btn));
    loadFlows().then(render, failed);
  });

  window.SF.chartDefaults();
  loadAll();
  setInterval(drawAge, 5000);
  // the clock's note, and the nightly panels once another day has ended
  setInterval(() => loadNightly().then(render, failed), 60000);
  live({ firm: onFirm }, loadAll);
})();
