/* The firm dashboard: activity per minute, top symbols, buy/sell imbalance by symbol and sector,
   sector flows, most active users, pipeline health, the nightly views and the reconciliation.
   Loaded from /api/v1/firm/*, kept live by the `firm` event (activity and health); the flow tables
   are re-read at most every 10 s while events arrive. */
"use strict";

(() => {
  const { fmt, sign, cell, row, fill, api, banner, failed, coalesce, live, colors, isNum } = window.SF;
  const $ = (id) => document.getElementById(id);
  const state = {
    day: null, minutes: [], symbols: [], bySymbolNotional: [], sectors: [],
    topUsers: { trades: null, notional: null }, nightly: null, batches: [], lastBatchAge: null,
    loadedAt: Date.now(), sort: "trades", asOf: null,
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
    async () => {
      const [trades, notional] = await Promise.all([
        api("/api/v1/firm/top-users?metric=trades"), api("/api/v1/firm/top-users?metric=notional")]);
      state.topUsers = { trades, notional };
    },
    async () => { state.nightly = await api("/api/v1/firm/nightly"); },
    async () => {
      const health = await api("/api/v1/firm/health");
      state.batches = health.batches;
      state.lastBatchAge = health.last_batch_age_seconds;
      state.loadedAt = Date.now();
    },
  ];

  async function loadAll() {
    const results = await Promise.allSettled(loaders.map((load) => load()));
    const failure = results.find((r) => r.status === "rejected");
    state.asOf = new Date().toISOString();
    if (failure) failed(failure.reason); else banner(null);
    render();
  }

  const reloadFlows = coalesce(() => loadFlows().then(render, failed), 10000);

  function onFirm(ev) {
    if (ev.minute) upsertMinute(ev.minute);
    if (ev.health && !state.batches.some((b) => b.batch_id === ev.health.batch_id)) {
      state.batches = [ev.health, ...state.batches].slice(0, 60);
      const finished = Date.parse(ev.health.finished_at);
      state.lastBatchAge = Number.isNaN(finished) ? 0 : Math.max(0, (Date.now() - finished) / 1000);
      state.loadedAt = Date.now();
    }
    state.asOf = ev.as_of || new Date().toISOString();
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
    $("as-of").textContent = state.asOf ? state.asOf.slice(11, 19) + " UTC" : "–";
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

  const MONEYISH = /notional|value|cash|pnl|exposure|amount/i;

  function metric(name, v) {
    if (!isNum(v)) return "–";
    if (MONEYISH.test(name)) return fmt.compactMoney(v);
    if (/weight|share|imbalance|ratio/i.test(name)) return fmt.pct(v);
    return Number.isInteger(v) ? fmt.int(v) : fmt.dec(v);
  }

  function viewTable(name, rows) {
    const box = document.createElement("div");
    const title = document.createElement("h3");
    title.textContent = name.replaceAll("_", " ");
    const names = rows.length ? Object.keys(rows[0].metrics) : [];
    const table = document.createElement("table");
    table.className = "data";
    const head = row([cell("#", { cls: "num" }), cell(""), ...names.map((n) => cell(n.replaceAll("_", " "), { cls: "num" }))]);
    const thead = document.createElement("thead");
    thead.append(head);
    const tbody = document.createElement("tbody");
    tbody.append(...rows.slice(0, 10).map((r) => row([cell(String(r.rank), { cls: "num" }), cell(r.label),
      ...names.map((n) => cell(metric(n, r.metrics[n]), { cls: "num" }))])));
    table.append(thead, tbody);
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.append(table);
    box.append(title, wrap);
    box.dataset.view = name;
    return box;
  }

  function drawNightly() {
    const n = state.nightly;
    const ok = n && n.status === "ok";
    $("nightly-status").hidden = ok;
    $("nightly-status").textContent = n ? "Not computed yet: the nightly batch has not run for this day."
      : "Not available right now (see the message at the top).";
    $("nightly-computed").textContent = ok && n.computed_at ? `(computed ${n.computed_at.replace("T", " ").slice(0, 16)} UTC)` : "";
    $("nightly-views").replaceChildren(...(ok ? Object.entries(n.views).map(([k, v]) => viewTable(k, v)) : []));
  }

  function drawReconciliation() {
    const target = $("reconciliation");
    const r = state.nightly && state.nightly.reconciliation;
    if (!r) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "Not computed yet: the nightly batch reconciles the stream with the archive.";
      target.replaceChildren(p);
      return;
    }
    const dl = document.createElement("dl");
    dl.className = "recon";
    const items = [["Status", r.status], ["Run at", r.run_at ? r.run_at.replace("T", " ").slice(0, 19) : "–"],
      ["Users checked", fmt.int(r.users_checked)], ["Holdings checked", fmt.int(r.holdings_checked)],
      ["Mismatches", fmt.int(r.mismatches)], ["Repaired", fmt.int(r.repaired)]];
    for (const [k, v] of items) {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v;
      if (k === "Status") dd.className = r.mismatches ? "status-bad" : "status-ok";
      if (k === "Mismatches") sign(dd, -r.mismatches);
      dl.append(dt, dd);
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
  live({ firm: onFirm }, loadAll);
})();
