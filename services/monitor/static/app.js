/* optbot monitor page: renders the panels pushed over SSE (/api/events).
 * Every panel event carries the same JSON as its REST endpoint. Text from the bus is
 * always set with textContent (never innerHTML). Missing values render as "—". */
"use strict";

const $ = (id) => document.getElementById(id);
const DASH = "—";
const SVGNS = "http://www.w3.org/2000/svg";
const app = { status: null, quotes: null, bars: null, symbol: "SPY", prev: {}, lastMsg: 0,
  es: null, backoff: 1000, controlsEnabled: false, ticks: {} };
const MAX_TICKS = 900; // per symbol: ~15 min of 1 s samples, drawn until bars exist

// ---------- formatting ----------
function num(v, d = 2) {
  return v === null || v === undefined || !isFinite(v) ? DASH
    : Number(v).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}
function signed(v, d = 2, suffix = "") {
  if (v === null || v === undefined || !isFinite(v)) return DASH;
  return (v > 0 ? "+" : "") + num(v, d) + suffix;
}
function cls(v) { return v > 0 ? "up" : v < 0 ? "down" : ""; }
function age(s) {
  if (s === null || s === undefined) return DASH;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  return Math.floor(s / 3600) + "h";
}
function clock(ts) {
  if (!ts) return DASH;
  return new Date(ts * 1000).toLocaleTimeString("en-GB", { hour12: false });
}
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}
function td(text, klass) { return el("td", { class: klass || "", text: String(text) }); }
function fillBody(table, rows, emptyText, span) {
  const body = table.tBodies[0];
  if (!rows.length) rows = [el("tr", {}, el("td", { class: "empty", colspan: String(span), text: emptyText }))];
  body.replaceChildren(...rows);
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

// ---------- header ----------
function renderStatus(s) {
  app.status = s;
  $("mode").textContent = s.mode === "ib_paper" ? "IB PAPER" : s.mode.toUpperCase();
  $("mode").className = "pill " + (s.mode === "ib_paper" ? "warn" : "ok");
  $("foot-version").textContent = "optbot " + s.version;
  renderGateway(s.gateway);
  const r = s.risk;
  $("risk").className = "risk risk-" + r.state;
  $("risk-state").textContent = r.state === "UNKNOWN" ? "RISK —" : r.state;
  const who = r.who ? ` (${r.who}${r.since ? ", " + clock(r.since) : ""})` : "";
  $("risk-why").textContent = (r.why || "") + who;
  $("risk").title = "risk state: " + r.state + (r.why ? " — " + r.why : "");
  $("services").replaceChildren(...s.services.map((v) => el("span", {
    class: "svc" + (v.alive ? "" : " dead"),
    title: v.alive ? `pid ${v.pid}, up ${age(v.uptime_s)}, lag ${v.lag}` : "no heartbeat",
    text: v.alive ? `${v.name} ${age(v.heartbeat_age_s)}` : `${v.name} DOWN`,
  })));
  setControlsEnabled(s.controls_enabled);
}
function renderGateway(g) {
  const box = $("gateway");
  const delayed = g.data_type && g.data_type.startsWith("delayed");
  $("delayed").hidden = !delayed;
  if (!g.state) { box.className = "pill muted"; box.textContent = "gateway: no data yet"; return; }
  const parts = ["GATEWAY " + g.state.toUpperCase()];
  if (g.client_id !== null) parts.push("client " + g.client_id);
  if (g.server_version) parts.push("v" + g.server_version);
  if (g.data_type) parts.push(g.data_type.toUpperCase().replace("_", " "));
  box.textContent = parts.join(" · ");
  box.title = g.reason || "";
  box.className = "pill " + (g.state !== "connected" ? "bad" : delayed ? "warn" : "ok");
}

// ---------- market ----------
function displayPrice(q) { return q ? q.price : null; }
function renderQuotes(data) {
  app.quotes = data;
  recordTicks(data.quotes);
  const byKey = Object.fromEntries(data.quotes.map((q) => [q.key, q]));
  $("indices").replaceChildren(...["SPY", "QQQ", "VIX"].map((k) => indexTile(k, byKey[k])));
  const rows = data.quotes.map((q) => {
    const prev = app.prev[q.key];
    const tr = el("tr", { "data-key": q.key, class: (q.stale ? "stale" : "") + (q.key === app.symbol ? " sel" : "") },
      el("td", { text: q.key }, q.data_type && q.data_type.startsWith("delayed") ? el("span", { class: "tag delayed", text: "DELAYED" }) : null),
      td(num(q.bid)), td(num(q.ask)), td(num(q.price)),
      td(signed(q.change_pct, 2, "%"), cls(q.change)), td(age(q.age_s)));
    tr.title = `${q.key}: change ${signed(q.change)} vs close ${num(q.close)}` + (q.iv !== null ? `, IV ${num(q.iv * 100, 1)}%` : "");
    if (prev !== undefined && prev !== q.price && q.price !== null) tr.cells[3].classList.add(q.price > prev ? "flash-up" : "flash-down");
    app.prev[q.key] = q.price;
    return tr;
  });
  fillBody($("watchlist"), rows, "no data yet", 6);
  const stale = data.quotes.filter((q) => q.stale).length;
  $("watch-hint").textContent = `${data.quotes.length} symbols · ${stale} stale (> ${data.stale_after_s}s)`;
  fillSymbols(data.quotes.map((q) => q.key));
  const q = byKey[app.symbol];
  if (q) { $("chart-last").textContent = num(displayPrice(q)); drawChart(); }
}
function recordTicks(quotes) {
  const now = Date.now() / 1000;
  for (const q of quotes) {
    if (q.price === null || q.stale) continue;
    const buf = app.ticks[q.key] || (app.ticks[q.key] = []);
    const last = buf[buf.length - 1];
    if (last && now - last.t < 0.9 && last.p === q.price) continue;
    buf.push({ t: now, p: q.price });
    if (buf.length > MAX_TICKS) buf.splice(0, buf.length - MAX_TICKS);
  }
}
function indexTile(key, q) {
  const p = displayPrice(q);
  return el("div", { class: "tile" + (!q || q.stale ? " stale" : ""), "data-key": key },
    el("div", { class: "sym", text: key + (q && q.stale ? " · stale" : "") }),
    el("div", { class: "px", text: num(p) }),
    el("div", { class: "chg " + cls(q && q.change), text: q ? `${signed(q.change)} (${signed(q.change_pct, 2, "%")})` : DASH }));
}
function fillSymbols(keys) {
  const sel = $("chart-symbol");
  if (sel.options.length === keys.length) return;
  sel.replaceChildren(...keys.map((k) => el("option", { value: k, text: k })));
  sel.value = app.symbol;
}
function renderMarket(m) {
  const s = m.sentiment;
  $("sent-state").textContent = s.state || "warming up";
  $("sent-state").className = "sent " + (s.state || "");
  $("sent-reason").textContent = s.state ? `${s.reason || ""}${s.since ? " · since " + s.since.slice(11, 19) : ""}` : "no data yet";
  $("sent-inputs").replaceChildren(...Object.entries(s.inputs).map(([k, v]) =>
    el("tr", {}, td(k), td(num(v, 3)))));
  const c = m.candidates;
  const rows = c.candidates.map((x, i) => el("tr", {}, td(i + 1), td(x.symbol, "l"),
    td(x.direction, x.direction === "long" ? "up" : "down"), td(num(x.score, 3))));
  fillBody($("candidates"), rows, "no data yet", 4);
  const excluded = Object.keys(c.excluded || {}).length;
  $("cand-hint").textContent = c.updated ? `updated ${c.updated.slice(11, 19)} · ${excluded} excluded` : "";
}

// ---------- chart ----------
async function loadBars() {
  const sym = app.symbol;
  try {
    const r = await fetch(`/api/bars/${encodeURIComponent(sym)}?limit=120`);
    if (!r.ok) return;
    const data = await r.json();
    if (data.symbol === sym) { app.bars = data; drawChart(); }
  } catch (e) { /* the SSE indicator shows the connection state */ }
}
function chartSeries() {
  const bars = (app.bars && app.bars.symbol === app.symbol) ? app.bars.bars.slice() : [];
  const q = app.quotes && app.quotes.quotes.find((x) => x.key === app.symbol);
  const live = displayPrice(q);
  if (live !== null && live !== undefined) {
    const now = Math.floor(Date.now() / 1000);
    const last = bars[bars.length - 1];
    const step = bars.length > 1 ? bars[1].t - bars[0].t : 60;
    if (last && now < last.t + step) {
      bars[bars.length - 1] = { ...last, c: live, h: Math.max(last.h, live), l: Math.min(last.l, live) };
    } else {
      bars.push({ t: last ? last.t + step : now, o: live, h: live, l: live, c: live, live: true });
    }
  }
  return bars;
}
function drawChart() {
  const box = $("chart");
  const bars = chartSeries();
  const ticks = app.ticks[app.symbol] || [];
  if (bars.length < 5 && ticks.length >= 2) { drawTickLine(box, ticks); return; }
  if (!bars.length) { box.replaceChildren(el("div", { class: "empty", text: "no data yet" })); return; }
  const W = Math.max(box.clientWidth, 300), H = box.clientHeight || 300, padR = 56, padB = 18;
  const lo = Math.min(...bars.map((b) => b.l)), hi = Math.max(...bars.map((b) => b.h));
  const span = hi - lo || Math.abs(hi) * 0.001 || 1;
  const y = (v) => 6 + (H - padB - 12) * (1 - (v - lo) / span);
  const bw = (W - padR) / Math.max(bars.length, 20);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img",
    "aria-label": `${app.symbol} price chart` });
  priceAxis(s, lo, span, y, W, padR);
  bars.forEach((b, i) => {
    const x = i * bw + bw / 2, color = b.c >= b.o ? "#3fb68b" : "#ef5a5a";
    s.append(svg("line", { x1: x, x2: x, y1: y(b.h), y2: y(b.l), stroke: color, "stroke-width": 1 }));
    const top = y(Math.max(b.o, b.c)), h = Math.max(1, Math.abs(y(b.o) - y(b.c)));
    s.append(svg("rect", { x: x - bw * 0.35, y: top, width: Math.max(1, bw * 0.7), height: h, fill: color }));
  });
  const last = bars[bars.length - 1], ly = y(last.c);
  s.append(svg("line", { x1: 0, x2: W - padR, y1: ly, y2: ly, stroke: "#4aa3ff", "stroke-dasharray": "3 3" }));
  const lt = svg("text", { x: W - padR + 4, y: ly + 3, class: "axis last" });
  lt.textContent = num(last.c);
  s.append(lt);
  [0, Math.floor(bars.length / 2), bars.length - 1].forEach((i) => {
    const t = svg("text", { x: Math.min(i * bw + 2, W - padR - 40), y: H - 4, class: "axis" });
    t.textContent = clock(bars[i].t).slice(0, 5); s.append(t);
  });
  box.replaceChildren(s);
}
function priceAxis(s, lo, span, y, W, padR) {
  for (let i = 0; i <= 4; i++) {
    const v = lo + (span * i) / 4, yy = y(v);
    s.append(svg("line", { x1: 0, x2: W - padR, y1: yy, y2: yy, class: "grid-line" }));
    const t = svg("text", { x: W - padR + 4, y: yy + 3, class: "axis" });
    t.textContent = num(v, span < 0.2 ? 3 : 2);
    s.append(t);
  }
}
function drawTickLine(box, ticks) {
  // Until market_data has closed a few bars, show the live quotes as a line.
  const W = Math.max(box.clientWidth, 300), H = box.clientHeight || 300, padR = 56, padB = 18;
  const ps = ticks.map((x) => x.p), lo0 = Math.min(...ps), hi0 = Math.max(...ps);
  const pad = (hi0 - lo0) * 0.1 || Math.abs(hi0) * 0.0005 || 1, lo = lo0 - pad, span = hi0 + pad - lo;
  const t0 = ticks[0].t, t1 = Math.max(ticks[ticks.length - 1].t, t0 + 10);
  const x = (t) => ((t - t0) / (t1 - t0)) * (W - padR);
  const y = (v) => 6 + (H - padB - 12) * (1 - (v - lo) / span);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img",
    "aria-label": `${app.symbol} live price` });
  priceAxis(s, lo, span, y, W, padR);
  const d = ticks.map((k, i) => `${i ? "L" : "M"}${x(k.t).toFixed(1)},${y(k.p).toFixed(1)}`).join(" ");
  const up = ps[ps.length - 1] >= ps[0];
  s.append(svg("path", { d, fill: "none", stroke: up ? "#3fb68b" : "#ef5a5a", "stroke-width": 1.6 }));
  const last = ticks[ticks.length - 1], ly = y(last.p);
  s.append(svg("line", { x1: 0, x2: W - padR, y1: ly, y2: ly, stroke: "#4aa3ff", "stroke-dasharray": "3 3" }));
  const lt = svg("text", { x: W - padR + 4, y: ly + 3, class: "axis last" }); lt.textContent = num(last.p);
  s.append(lt);
  [t0, (t0 + t1) / 2, t1].forEach((t, i) => {
    const tx = svg("text", { x: [2, (W - padR) / 2 - 20, W - padR - 46][i], y: H - 4, class: "axis" });
    tx.textContent = clock(t); s.append(tx);
  });
  const note = svg("text", { x: 6, y: 16, class: "axis" }); note.textContent = "live quotes (bars appear as they close)";
  s.append(note);
  box.replaceChildren(s);
}
function selectSymbol(sym) {
  app.symbol = sym; app.bars = null; $("chart-symbol").value = sym;
  for (const tr of $("watchlist").tBodies[0].rows) tr.classList.toggle("sel", tr.dataset.key === sym);
  const q = app.quotes && app.quotes.quotes.find((x) => x.key === sym);
  $("chart-last").textContent = num(displayPrice(q));
  drawChart(); loadBars();
}

// ---------- trading ----------
function renderAccount(a) {
  app.lastAccount = a;
  $("acct-id").textContent = a.account ? `${a.account} · ${a.currency}${a.updated ? " · " + clock(a.updated) : ""}` : "no data yet";
  const stats = [["Net liq", a.net_liquidation], ["Cash", a.cash], ["Buying power", a.buying_power],
    ["Day P&L", a.day_pnl, true], ["Unrealized", a.unrealized_pnl, true], ["Realized", a.realized_pnl, true],
    ["Opening equity" + (a.equity_source ? ` (${a.equity_source})` : ""), a.opening_equity],
    ["Daily loss limit", a.daily_loss_limit]];
  if (a.stale_marks && a.stale_marks.length) stats.push(["Day P&L uses stale marks", a.stale_marks.length]);
  $("account-stats").replaceChildren(...stats.map(([k, v, pnl]) => el("div", { class: "stat" },
    el("div", { class: "k", text: k }), el("div", { class: "v " + (pnl ? cls(v) : ""), text: pnl ? signed(v) : num(v) }))));
  drawEquity(a.equity);
  const rows = a.positions.map((p) => el("tr", {}, td(p.contract), td(p.quantity), td(num(p.avg_cost)),
    td(num(p.mark) + (p.mark_stale ? " (stale)" : ""), p.mark_stale ? "stale" : ""), td(num(p.delta, 3)), td(num(p.gamma, 4)), td(num(p.theta, 3)), td(num(p.vega, 3)),
    td(p.iv === null ? DASH : num(p.iv * 100, 1) + "%"), td(signed(p.unrealized_pnl), cls(p.unrealized_pnl))));
  fillBody($("positions"), rows, a.account ? "no open positions" : "no data yet", 10);
  const sel = $("ctl-target"), keep = sel.value;
  sel.replaceChildren(el("option", { value: "", text: "position…" }),
    ...a.positions.map((p) => el("option", { value: p.contract, text: `${p.contract} (${p.quantity})` })));
  sel.value = a.positions.some((p) => p.contract === keep) ? keep : "";
}
function drawEquity(points) {
  const box = $("equity");
  if (!points || points.length < 2) { box.replaceChildren(el("div", { class: "empty", text: "no equity data yet" })); return; }
  const W = Math.max(box.clientWidth, 200), H = box.clientHeight || 110;
  const vals = points.map((p) => p.net_liquidation);
  const lo = Math.min(...vals), hi = Math.max(...vals), span = hi - lo || 1;
  const d = points.map((p, i) => `${i ? "L" : "M"}${(i / (points.length - 1)) * (W - 60)},${6 + (H - 12) * (1 - (p.net_liquidation - lo) / span)}`).join(" ");
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": "equity curve" });
  const up = vals[vals.length - 1] >= vals[0];
  s.append(svg("path", { d, fill: "none", stroke: up ? "#3fb68b" : "#ef5a5a", "stroke-width": 2 }));
  [[hi, 10], [lo, H - 2]].forEach(([v, yy]) => { const t = svg("text", { x: W - 56, y: yy, class: "axis" }); t.textContent = num(v, 0); s.append(t); });
  box.replaceChildren(s);
}
function renderPerformance(p) {
  $("perf-day").textContent = p.trading_day;
  const stats = [["Round trips", p.round_trips, false, 0], ["Win rate", p.win_rate === null ? null : p.win_rate * 100, false, 0, "%"],
    ["Realized P&L (net)", p.net_pnl, true], ["Max drawdown", p.max_drawdown], ["Avg win", p.avg_win, true],
    ["Avg loss", p.avg_loss, true], ["Commissions", p.commissions], ["Fills today", p.fills, false, 0]];
  $("perf-stats").replaceChildren(...stats.map(([k, v, pnl, d = 2, suffix = ""]) => el("div", { class: "stat", "data-k": k },
    el("div", { class: "k", text: k }),
    el("div", { class: "v " + (pnl ? cls(v) : ""), text: pnl ? signed(v, d) : (v === null ? DASH : num(v, d) + suffix) }))));
  const rows = p.trades.map((t) => el("tr", { title: `${t.direction} ${t.quantity} @ ${num(t.entry_price)} → ${num(t.exit_price)}, commissions ${num(t.commissions)}` },
    td(clock(t.exit_ts)), el("td", { class: "l wrap" }, `${t.contract} ×${t.quantity}`,
      el("div", { class: "reason", text: t.exit_reason || DASH })), td(signed(t.pnl), cls(t.pnl))));
  fillBody($("perf-trades"), rows, "no round trips today", 3);
}
function renderOrders(o) {
  const rows = [];
  for (const e of o.events) {
    rows.push({ ts: e.ts, cells: [clock(e.ts), e.client_order_id, e.kind, e.contract, e.action,
      e.fill_qty || e.filled_total || "", e.fill_price === null ? "" : num(e.fill_price), e.reason + (e.simulated ? "" : " [IB]")],
    klass: e.kind === "rejected" ? "down" : e.kind === "fill" ? "up" : "" });
  }
  for (const r of o.requests) {
    rows.push({ ts: r.ts, cells: [clock(r.ts), r.client_order_id, r.type, r.contract, r.action,
      r.quantity || "", r.limit_price === null ? r.order_type : num(r.limit_price), r.reason], klass: "" });
  }
  rows.sort((a, b) => b.ts - a.ts);
  fillBody($("orders"), rows.slice(0, 60).map((r) => el("tr", { class: r.klass },
    ...r.cells.map((c) => td(c)))), "no orders yet", 8);
}
function entryLine(e, klass, kind, text) {
  return el("li", { class: klass }, el("span", { class: "t", text: clock(e.ts) }),
    el("span", { class: "k", text: kind }), document.createTextNode(text));
}
function renderDecisions(d) {
  const items = d.decisions.map((x) => {
    const what = [x.symbol, x.direction, x.contract, x.quantity ? `x${x.quantity}` : "",
      x.limit_price !== null ? "@ " + num(x.limit_price) : ""].filter(Boolean).join(" ");
    return entryLine(x, x.outcome, `${x.outcome.toUpperCase()} ${x.kind}`, `${what}${x.reason ? " — " + x.reason : ""}`);
  });
  $("decisions").replaceChildren(...(items.length ? items : [el("li", { class: "empty", text: "no data yet" })]));
}

// ---------- system ----------
function renderSystem(s) {
  $("redis-info").textContent = s.redis.redis_version ? `redis ${s.redis.redis_version} · ${s.redis.used_memory_human} · ${s.redis.connected_clients} clients` : "";
  const rows = s.streams.map((x) => {
    const lag = x.groups.reduce((n, g) => n + (g.lag || 0), 0);
    return el("tr", {}, td(x.name), td(x.length.toLocaleString()), td(x.groups.map((g) => g.name).join(", ") || DASH, "l"),
      td(x.pending, x.pending ? "down" : ""), td(lag, lag > 100 ? "down" : ""));
  });
  fillBody($("streams"), rows, "no streams", 5);
  $("dlq-count").textContent = s.dlq.count;
  $("dlq-count").className = "count" + (s.dlq.count ? " bad" : "");
  const dl = s.dlq.latest.map((e) => entryLine(e, "error", e.fields.stream || "dlq", e.fields.reason || ""));
  $("dlq").replaceChildren(...(dl.length ? dl : [el("li", { class: "empty", text: "none" })]));
  const errs = s.ib_errors.map((e) => entryLine(e, e.severity === "warning" || e.code >= 2100 ? "warning" : "error",
    String(e.code), `${e.symbol ? e.symbol + ": " : ""}${e.message}`));
  $("ib-errors").replaceChildren(...(errs.length ? errs : [el("li", { class: "empty", text: "none" })]));
}

// ---------- alerts (open conditions first, then history; delivery per channel) ----------
function alertLine(a, open) {
  const klass = a.state === "closed" || a.severity === "info" ? "" : a.severity === "critical" ? "error" : "warning";
  const tag = open ? "OPEN " + a.key : a.state === "closed" ? "RECOVERED " + a.key : a.key;
  const sent = Object.entries(a.delivery || {}).map(([ch, st]) => `${ch}: ${st}`).join(", ");
  return entryLine(a, klass, tag, a.message + (sent ? `  [${sent}]` : ""));
}
async function loadAlerts() {
  try {
    const r = await fetch("/api/alerts?limit=30");
    if (!r.ok) return;
    const p = await r.json();
    const items = [...p.open.map((a) => alertLine(a, true)), ...p.history.map((a) => alertLine(a, false))];
    $("alerts").replaceChildren(...(items.length ? items : [el("li", { class: "empty", text: "none" })]));
    $("alerts-open").textContent = p.open.length;
    $("alerts-open").className = "count" + (p.open.length ? " bad" : "");
    $("alert-channels").textContent = p.channels.length
      ? p.channels.map((c) => `${c.id} ${c.state} (sent ${c.sent}, queued ${c.queued}${c.last_error && c.state !== "ok" ? ", " + c.last_error : ""})`).join(" · ")
      : "no channel configured (OPTBOT_ALERT_URLS)";
  } catch (e) { /* the live connection shows the monitor is unreachable */ }
}
async function testAlert() {
  const out = $("test-alert-result");
  try {
    const r = await fetch("/api/alerts/test", { method: "POST",
      headers: { Authorization: "Bearer " + $("ctl-token").value.trim() } });
    const data = await r.json().catch(() => ({}));
    out.className = r.ok ? "result ok" : "result err";
    out.textContent = r.ok ? `test alert added (${data.key})` : `refused (${r.status}): ${typeof data.detail === "string" ? data.detail : "invalid request"}`;
    loadAlerts();
  } catch (e) { out.className = "result err"; out.textContent = "monitor unreachable"; }
}

// ---------- controls ----------
function setControlsEnabled(on) {
  app.controlsEnabled = on;
  $("controls-off").hidden = on;
  for (const b of document.querySelectorAll("#controls button, #controls input, #controls select")) b.disabled = !on;
}
async function control(action) {
  const out = $("ctl-result");
  const token = $("ctl-token").value.trim();
  const body = { why: $("ctl-why").value.trim() };
  if (action === "flatten") {
    body.target = $("ctl-target").value;
    if (!body.target) { out.className = "result err"; out.textContent = "choose a position to flatten"; return; }
  }
  out.className = "result"; out.textContent = action + "…";
  try {
    const r = await fetch(`/api/control/${action}`, { method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
      body: JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    if (r.ok) {
      out.className = "result ok";
      const st = data.state ? (data.changed ? " → " + data.state : " → " + data.state + " (already)") : "";
      out.textContent = `${action} ${data.state ? "applied" : "sent to the strategy"}${st} (event ${data.event_id})`;
    } else {
      out.className = "result err";
      out.textContent = `${action} refused (${r.status}): ${typeof data.detail === "string" ? data.detail : "invalid request"}`;
    }
  } catch (e) {
    out.className = "result err"; out.textContent = `${action} failed: monitor unreachable`;
  }
}

// ---------- live connection ----------
function setConn(ok, text) {
  $("conn").className = "conn" + (ok ? "" : " down");
  $("conn-text").textContent = text;
}
const RENDER = { status: renderStatus, quotes: renderQuotes, market: renderMarket, account: renderAccount,
  performance: renderPerformance, orders: renderOrders, decisions: renderDecisions, system: renderSystem };
function connect() {
  if (app.es) app.es.close();
  const es = new EventSource("/api/events");
  app.es = es;
  es.addEventListener("hello", () => { app.backoff = 1000; app.lastMsg = Date.now(); setConn(true, "LIVE"); loadBars(); });
  es.addEventListener("connection", (ev) => {
    const c = JSON.parse(ev.data); app.lastMsg = Date.now();
    setConn(c.redis, c.redis ? "LIVE" : "DISCONNECTED — Redis unreachable");
  });
  es.addEventListener("bars", (ev) => {
    if (JSON.parse(ev.data).symbols.includes(app.symbol)) loadBars();
  });
  for (const [name, fn] of Object.entries(RENDER)) {
    es.addEventListener(name, (ev) => {
      app.lastMsg = Date.now();
      try { fn(JSON.parse(ev.data)); } catch (e) { console.warn("render", name, e); }
    });
  }
  es.onerror = () => {
    setConn(false, "DISCONNECTED — reconnecting");
    es.close();
    if (app.es === es) {
      app.es = null;
      setTimeout(connect, app.backoff);
      app.backoff = Math.min(app.backoff * 2, 5000);
    }
  };
}
function watchdog() {
  $("foot-clock").textContent = new Date().toLocaleTimeString("en-GB", { hour12: false });
  if (app.es && app.lastMsg && Date.now() - app.lastMsg > 8000) {
    setConn(false, "DISCONNECTED — no updates");
    app.es.close(); app.es = null; connect();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("chart-symbol").addEventListener("change", (e) => selectSymbol(e.target.value));
  $("watchlist").tBodies[0].addEventListener("click", (e) => {
    const tr = e.target.closest("tr"); if (tr && tr.dataset.key) selectSymbol(tr.dataset.key);
  });
  for (const b of document.querySelectorAll("#controls button")) b.addEventListener("click", () => control(b.dataset.action));
  window.addEventListener("resize", () => { drawChart(); if (app.lastAccount) drawEquity(app.lastAccount.equity); });
  setControlsEnabled(false);
  connect();
  setInterval(watchdog, 1000);
  setInterval(loadBars, 30000);
  $("test-alert").addEventListener("click", testAlert);
  loadAlerts();
  setInterval(loadAlerts, 3000);
});
