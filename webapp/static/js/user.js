/* The user dashboard: totals, risk, holdings (sortable), value over the market's day, sectors vs the
   S&P 500 and recent trades. Every time shown is the market's (the latest price tick), not the
   browser's clock. Loaded from /api/v1, kept live by the `portfolio` and `prices` events; every
   redraw goes through one coalesced render (at most one per second). */
"use strict";

(() => {
  const { fmt, sign, cell, row, fill, api, banner, failed, coalesce, live, colors, isNum, stamp, drawClock } =
    window.SF;
  const $ = (id) => document.getElementById(id);
  const TEXT_KEYS = new Set(["symbol", "name", "sector"]);
  const state = {
    portfolio: null, trades: [], equity: [], equityDay: null, sp500: null, historical: null, clock: null,
    sort: { key: "market_value", dir: -1 }, lastBatch: null,
  };
  const charts = { equity: null, sectors: null };

  // ---------------------------------------------------------------- loading

  /** `fresh`: after a `portfolio` event, read past the server's cache (the worker answering may not
      have seen that event yet). */
  async function loadPortfolio(fresh = false) {
    const f = fresh ? "fresh=1" : "fresh=0";
    const [portfolio, trades] = await Promise.all([
      api(`/api/v1/portfolio?${f}`), api(`/api/v1/portfolio/trades?limit=25&${f}`)]);
    state.portfolio = portfolio;
    state.trades = trades.trades;
  }

  /** The value curve of the market's day (the server's default day: the latest price tick's). */
  async function loadEquity() {
    const r = await api("/api/v1/portfolio/equity");
    state.equity = r.points;
    state.equityDay = r.day;
  }

  async function loadClock() {
    state.clock = await api("/api/v1/market/clock");
  }

  /** Last night's historical VaR/ES (the nightly batch), or nothing before the first night. */
  async function loadHistorical() {
    state.historical = (await api("/api/v1/portfolio/historical-risk")).nights[0] || null;
  }

  /** Each part on its own: a failing one leaves the others current and shows in the banner. */
  async function loadAll() {
    const jobs = [loadPortfolio(), loadEquity(), loadHistorical(), loadClock()];
    if (!state.sp500) jobs.push(api("/api/v1/reference/sectors").then((r) => { state.sp500 = r.sectors; }));
    const failure = (await Promise.allSettled(jobs)).find((r) => r.status === "rejected");
    if (failure) failed(failure.reason); else banner(null);
    render();
  }

  const reloadHoldings = coalesce(() => loadPortfolio(true).then(render, failed), 1000);
  // the market moved into another day: its curve starts again, the day P&L counts from the new open
  const reloadDay = coalesce(
    () => Promise.all([loadEquity(), loadClock(), loadPortfolio(true)]).then(render, failed), 5000);

  // ---------------------------------------------------------------- live events

  function onPortfolio(ev) {
    if (!state.portfolio) return;
    Object.assign(state.portfolio, { totals: ev.totals, risk: ev.risk, as_of: ev.as_of });
    if (ev.last_batch_id !== state.lastBatch) {
      state.lastBatch = ev.last_batch_id;
      document.body.dataset.lastBatch = String(ev.last_batch_id);
      reloadHoldings();
    }
    render();
  }

  /** Re-mark the holdings to the new prices; totals move by the change in market value. */
  function onPrices(ev) {
    const p = state.portfolio;
    if (!p || !ev.prices) return;
    let delta = 0;
    for (const h of p.holdings) {
      const price = ev.prices[h.symbol];
      if (!isNum(price)) continue;
      const value = h.quantity * price;
      delta += value - h.market_value;
      Object.assign(h, { price, market_value: value, unrealized_pnl: value - h.quantity * h.avg_cost });
    }
    if (delta === 0) return;
    const t = p.totals;
    t.market_value += delta; t.equity += delta; t.unrealized_pnl += delta; t.day_pnl += delta;
    for (const h of p.holdings) h.weight = t.market_value ? h.market_value / t.market_value : 0;
    p.as_of = ev.as_of || p.as_of;
    render();
  }

  /** The value curve's point for the market's minute of the prices shown (`as_of`, the latest
      tick's event time), on the curve's own time axis; never the browser's clock. */
  function upsertEquityPoint(totals, asOf) {
    if (!totals || !asOf || !state.equityDay) return;
    if (asOf.slice(0, 10) !== state.equityDay) {
      if (asOf.slice(0, 10) > state.equityDay) reloadDay();
      return;
    }
    const minute = asOf.slice(0, 16);
    const last = state.equity[state.equity.length - 1];
    const point = { minute: minute + ":00Z", equity: totals.equity, day_pnl: totals.day_pnl };
    if (last && last.minute.slice(0, 16) === minute) state.equity[state.equity.length - 1] = point;
    else if (!last || last.minute.slice(0, 16) < minute) state.equity.push(point);
  }

  // ---------------------------------------------------------------- rendering

  const render = coalesce(draw, 1000);

  function draw() {
    const p = state.portfolio;
    if (!p) return;
    $("as-of").textContent = stamp(p.as_of);
    $("equity-day").textContent = state.equityDay || "the market's day";
    drawClock(state.clock);
    $("price-source").textContent = p.live_prices === false ? "prices: last close" : "live prices";
    drawTotals(p.totals);
    drawRisk(p.risk);
    drawHistorical(state.historical);
    drawHoldings(p.holdings);
    drawTrades(state.trades);
    upsertEquityPoint(p.totals, p.as_of);   // the curve ends at the value shown in the cards
    drawEquity();
    drawSectors();
  }

  function drawTotals(totals) {
    for (const node of document.querySelectorAll("[data-total]")) {
      const v = totals[node.dataset.total];
      const signed = node.classList.contains("signed");
      node.textContent = signed ? fmt.signedMoney(v) : fmt.money(v);
      if (signed) sign(node, v);
    }
  }

  function drawRisk(risk) {
    const text = {
      var_95: fmt.money(risk.var_95), var_99: fmt.money(risk.var_99),
      es_95: fmt.money(risk.es_95), es_99: fmt.money(risk.es_99),
      beta: fmt.dec(risk.beta), volatility: volatility(risk.volatility),
      largest_position: risk.largest_position_symbol
        ? `${risk.largest_position_symbol} · ${fmt.pct(risk.largest_position_weight)}` : "–",
    };
    for (const node of document.querySelectorAll("[data-risk]")) node.textContent = text[node.dataset.risk];
  }

  function drawHistorical(night) {
    const text = night
      ? { var: `${fmt.money(night.var_95)} / ${fmt.money(night.var_99)}`,
          es: `${fmt.money(night.es_95)} / ${fmt.money(night.es_99)}`,
          night: `night of ${night.day}, ${night.scenarios} scenarios` }
      : { var: "not computed yet", es: "–", night: "after the first nightly run" };
    for (const node of document.querySelectorAll("[data-hist]")) node.textContent = text[node.dataset.hist];
  }

  /** Dollars, and as a share of the market value when there is one. */
  function volatility(dollars) {
    const mv = state.portfolio.totals.market_value;
    return isNum(dollars) && mv > 0 ? `${fmt.money(dollars)} (${fmt.pct(dollars / mv)})` : fmt.money(dollars);
  }

  function drawHoldings(holdings) {
    const { key, dir } = state.sort;
    const sorted = [...holdings].sort((a, b) => {
      const x = a[key]; const y = b[key];
      return dir * (TEXT_KEYS.has(key) ? String(x).localeCompare(String(y)) : (x ?? 0) - (y ?? 0));
    });
    const rows = sorted.map((h) => row([
      cell(h.symbol), cell(h.name), cell(h.sector),
      cell(fmt.int(h.quantity), { cls: "num" }), cell(fmt.money(h.avg_cost), { cls: "num" }),
      cell(fmt.money(h.price), { cls: "num" }), cell(fmt.money(h.market_value), { cls: "num" }),
      cell(fmt.signedMoney(h.unrealized_pnl), { cls: "num", signed: h.unrealized_pnl }),
      cell(fmt.pct(h.weight), { cls: "num" }),
    ], { symbol: h.symbol }));
    fill(document.querySelector("#holdings tbody"), rows, "holdings-empty");
    $("holdings-count").textContent = holdings.length ? `(${holdings.length})` : "";
  }

  function drawTrades(trades) {
    const rows = trades.map((t) => {
      const side = cell(t.side);
      side.className = t.side === "buy" ? "side-buy" : "side-sell";
      return row([cell(t.time.replace("T", " ").slice(0, 19)), cell(t.symbol), side,
        cell(fmt.int(t.quantity), { cls: "num" }), cell(fmt.money(t.price), { cls: "num" }),
        cell(fmt.money(t.notional), { cls: "num" })], { tradeId: t.trade_id });
    });
    fill(document.querySelector("#trades tbody"), rows, "trades-empty");
  }

  function drawEquity() {
    $("equity-empty").hidden = state.equity.length > 0;
    $("equity-chart").parentElement.hidden = state.equity.length === 0;
    if (!window.Chart) return;
    const labels = state.equity.map((pt) => fmt.minute(pt.minute));
    const data = state.equity.map((pt) => pt.equity);
    if (!charts.equity) {
      charts.equity = new window.Chart($("equity-chart"), {
        type: "line",
        data: { labels, datasets: [{ label: "Equity", data, borderColor: colors.accent, borderWidth: 2,
          pointRadius: (c) => (c.dataset.data.length < 30 ? 3 : 0), fill: false, tension: 0.2 }] },
        options: {
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { display: false },
            tooltip: { callbacks: { label: (c) => fmt.money(c.parsed.y) } } },
          scales: { y: { ticks: { callback: (v) => fmt.dollars(v) } },
            x: { ticks: { maxTicksLimit: 12 } } },
        },
      });
      return;
    }
    charts.equity.data.labels = labels;
    charts.equity.data.datasets[0].data = data;
    charts.equity.update("none");
  }

  /** Portfolio weight per sector (from the risk block, else the holdings) vs the S&P 500's. */
  function drawSectors() {
    if (!window.Chart || !state.sp500) return;
    const p = state.portfolio;
    let weights = p.risk && p.risk.sector_weights;
    if (!weights || !Object.keys(weights).length) {
      weights = {};
      for (const h of p.holdings) weights[h.sector] = (weights[h.sector] || 0) + h.weight;
    }
    const labels = state.sp500.map((s) => s.sector);
    const mine = labels.map((s) => weights[s] || 0);
    const index = state.sp500.map((s) => s.sp500_weight);
    if (!charts.sectors) {
      charts.sectors = new window.Chart($("sector-chart"), {
        type: "bar",
        data: { labels, datasets: [
          { label: "My portfolio", data: mine, backgroundColor: colors.accent, maxBarThickness: 14 },
          { label: "S&P 500", data: index, backgroundColor: colors.muted, maxBarThickness: 14 }] },
        options: {
          indexAxis: "y",
          plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${fmt.pct(c.parsed.x)}` } } },
          scales: { x: { ticks: { callback: (v) => fmt.pct(v) } } },
        },
      });
      return;
    }
    charts.sectors.data.datasets[0].data = mine;
    charts.sectors.update("none");
  }

  // ---------------------------------------------------------------- sorting

  function onSort(ev) {
    const th = ev.target.closest("th[data-key]");
    if (!th) return;
    const key = th.dataset.key;
    const dir = state.sort.key === key ? -state.sort.dir : (TEXT_KEYS.has(key) ? 1 : -1);
    state.sort = { key, dir };
    for (const other of document.querySelectorAll("#holdings th[data-key]")) {
      other.setAttribute("aria-sort", other === th ? (dir > 0 ? "ascending" : "descending") : "none");
    }
    if (state.portfolio) drawHoldings(state.portfolio.holdings);
  }

  document.querySelector("#holdings thead").addEventListener("click", onSort);
  window.SF.chartDefaults();
  loadAll();
  setInterval(() => loadClock().then(render, failed), 60000);
  live({ portfolio: onPortfolio, prices: onPrices }, loadAll);
})();
