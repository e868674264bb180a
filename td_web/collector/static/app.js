// The collector's live page: polls the JSON API and renders the feed and charts.
// Plain DOM building with textContent throughout: payloads come from clients and are never
// parsed as HTML.
"use strict";

const POLL_MS = 1000;
// Stats are heavier than the feed: refreshed at most every 2 s, and never using more than a
// tenth of the collector's time (on a database filled by a benchmark they take a while).
const STATS_MIN_INTERVAL_MS = 2000;
const STATS_TIME_SHARE = 10;
const MAX_ROWS = 300;
const SVG = "http://www.w3.org/2000/svg";

const state = {
  lastSignalId: 0,
  lastViolationId: 0,
  signals: [],      // newest first
  violations: [],   // grouped per offending signal, newest first
  expanded: new Set(),
  generation: 0,    // bumped when filters change, so late answers for old filters are ignored
  polls: 0,
  nextStatsAt: 0,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- filters -----------------------------------------------------------------------------

function filterParams() {
  const params = new URLSearchParams();
  const type = $("filter-type").value.trim();
  const session = $("filter-session").value.trim();
  const testMode = $("filter-test-mode").value;
  if (type) params.set("type", type);
  if (session) params.set("session", session);
  if (testMode !== "all") params.set("test_mode", testMode);
  return params;
}

function saveFiltersToUrl() {
  const params = filterParams();
  params.set("minutes", $("filter-minutes").value);
  if (!$("filter-violations").checked) params.set("violations", "hide");
  history.replaceState(null, "", "?" + params.toString());
}

function loadFiltersFromUrl() {
  const params = new URLSearchParams(location.search);
  $("filter-type").value = params.get("type") || "";
  $("filter-session").value = params.get("session") || "";
  $("filter-test-mode").value = params.get("test_mode") || "all";
  if (params.get("minutes")) $("filter-minutes").value = params.get("minutes");
  $("filter-violations").checked = params.get("violations") !== "hide";
}

function filtersChanged() {
  saveFiltersToUrl();
  state.generation += 1;
  state.lastSignalId = 0;
  state.lastViolationId = 0;
  state.signals = [];
  state.violations = [];
  renderFeed();
  poll(true);
}

function setFilter(id, value) {
  $(id).value = value;
  filtersChanged();
}

// -- fetching ----------------------------------------------------------------------------

async function getJson(path, params) {
  const response = await fetch(path + "?" + params.toString(), { cache: "no-store" });
  if (!response.ok) throw new Error(path + " answered " + response.status);
  return response.json();
}

async function poll(withStats) {
  const generation = state.generation;
  try {
    const signalParams = filterParams();
    signalParams.set("since_id", state.lastSignalId);
    signalParams.set("limit", MAX_ROWS);
    const violationParams = new URLSearchParams({ since_id: state.lastViolationId, limit: 1000 });
    const type = $("filter-type").value.trim();
    if (type) violationParams.set("type", type);

    const [signalAnswer, violationAnswer] = await Promise.all([
      getJson("/api/signals", signalParams),
      getJson("/api/violations", violationParams),
    ]);
    if (generation !== state.generation) return;
    addSignals(signalAnswer.signals);
    addViolations(violationAnswer.violations);
    if (withStats || Date.now() >= state.nextStatsAt) {
      const statsParams = filterParams();
      statsParams.set("minutes", $("filter-minutes").value);
      const started = Date.now();
      const [stats, panels] = await Promise.all([
        getJson("/api/stats", statsParams),
        getJson("/api/dashboard", filterParams()),
      ]);
      const took = Date.now() - started;
      state.nextStatsAt = Date.now() + Math.max(STATS_MIN_INTERVAL_MS, STATS_TIME_SHARE * took);
      if (generation !== state.generation) return;
      renderStats(stats);
      renderDashboard(panels);
    }
    setConnection("live", "live");
  } catch (error) {
    setConnection("offline", "offline: " + error.message);
  }
}

function setConnection(stateName, text) {
  const badge = $("connection");
  badge.dataset.state = stateName;
  badge.textContent = text;
}

function addSignals(answer) {
  // A filter change may overlap a running poll: skip what an earlier answer already brought.
  const signals = answer.filter((signal) => signal.id > state.lastSignalId);
  if (!signals.length) return;
  state.lastSignalId = Math.max(state.lastSignalId, ...signals.map((s) => s.id));
  for (const signal of signals) signal.fresh = state.polls > 0;
  state.signals = signals.concat(state.signals).slice(0, MAX_ROWS);
  renderFeed();
}

function addViolations(answer) {
  const violations = answer.filter((violation) => violation.id > state.lastViolationId);
  if (!violations.length) return;
  state.lastViolationId = Math.max(state.lastViolationId, ...violations.map((v) => v.id));
  // One row per offending signal (or per bad request), with every rule it broke.
  const groups = new Map(state.violations.map((group) => [group.key, group]));
  for (const violation of violations.slice().reverse()) {
    const key = violation.batch_id + ":" + (violation.signal_index ?? "request");
    let group = groups.get(key);
    if (!group) {
      group = {
        key,
        id: violation.id,
        received_at: violation.received_at,
        batch_id: violation.batch_id,
        signal_index: violation.signal_index,
        signal_type: violation.signal_type,
        signal_json: violation.signal_json,
        problems: [],
        fresh: state.polls > 0,
      };
      groups.set(key, group);
    }
    group.problems.push(violation);
  }
  state.violations = Array.from(groups.values())
    .sort((a, b) => b.id - a.id)
    .slice(0, MAX_ROWS);
  renderFeed();
}

// -- the feed ----------------------------------------------------------------------------

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString([], { hour12: false });
}

function short(text, length) {
  if (text === null || text === undefined) return "–";
  return text.length > length ? text.slice(0, length) + "…" : text;
}

function linkTo(filterId, text, title) {
  const span = el("span", { class: "link mono", title: title || text }, text);
  span.addEventListener("click", (event) => {
    event.stopPropagation();
    setFilter(filterId, title || text);
  });
  return span;
}

function payloadChips(payload) {
  const cell = el("td", { class: "payload" });
  const entries = Object.entries(payload || {});
  const sdk = (key) => key.startsWith("TelemetryDeck.SDK.");
  entries.sort(([a], [b]) => Number(sdk(a)) - Number(sdk(b)));
  for (const [key, value] of entries) {
    cell.append(
      el("span", { class: sdk(key) ? "chip sdk" : "chip" },
        el("span", { class: "key" }, key + "="), short(String(value), 80))
    );
  }
  return cell;
}

function signalRow(signal) {
  const rowKey = "s" + signal.id;
  const row = el("tr", { class: signal.fresh ? "signal fresh" : "signal", "data-type": signal.type });
  const payloadCell = payloadChips(signal.signal.payload);
  if (state.expanded.has(rowKey)) {
    payloadCell.append(el("pre", { class: "json" }, JSON.stringify(signal.signal, null, 2)));
  }
  row.append(
    el("td", { class: "time", title: signal.received_at }, clock(signal.received_at)),
    el("td", { class: "type" }, linkTo("filter-type", signal.type)),
    el("td", { class: "mono hash", title: signal.client_user }, short(signal.client_user, 8)),
    el("td", { class: "session hash" },
      signal.session_id ? linkTo("filter-session", short(signal.session_id, 8), signal.session_id) : "–"),
    el("td", {}, el("span", { class: signal.is_test_mode ? "badge test" : "badge" },
      signal.is_test_mode ? "test" : "prod")),
    payloadCell,
  );
  row.addEventListener("click", () => {
    if (state.expanded.has(rowKey)) state.expanded.delete(rowKey);
    else state.expanded.add(rowKey);
    renderFeed();
  });
  signal.fresh = false;
  return row;
}

function violationRow(group) {
  const row = el("tr", { class: group.fresh ? "violation fresh" : "violation", "data-rules": group.problems.map((p) => p.rule).join(" ") });
  const problems = el("td", { colspan: "4" });
  for (const problem of group.problems) {
    problems.append(el("div", { class: "problem" },
      el("span", { class: "rule" }, problem.rule), " ",
      el("span", { class: "message" }, problem.message)));
  }
  if (group.signal_json) {
    problems.append(el("pre", { class: "json" }, short(group.signal_json, 600)));
  }
  const where = group.signal_index === null
    ? "whole request"
    : "signal " + group.signal_index + " of batch " + group.batch_id;
  row.append(
    el("td", { class: "time", title: group.received_at }, clock(group.received_at)),
    el("td", { class: "type" }, group.signal_type || "(rejected)", el("div", { class: "hint" }, where)),
    problems,
  );
  group.fresh = false;
  return row;
}

function renderFeed() {
  const rows = $("feed-rows");
  const showViolations = $("filter-violations").checked;
  const items = state.signals.map((signal) => ({ at: signal.received_at, node: () => signalRow(signal) }));
  if (showViolations) {
    for (const group of state.violations) items.push({ at: group.received_at, node: () => violationRow(group) });
  }
  items.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  rows.replaceChildren(...items.slice(0, MAX_ROWS).map((item) => item.node()));
  $("empty").hidden = items.length > 0;
  $("feed-hint").textContent = items.length
    ? "newest first · click a row for its JSON, a type or session to filter"
    : "";
}

// -- stats and charts ----------------------------------------------------------------------

function renderStats(stats) {
  setCounter("count-signals", stats.total_signals);
  setCounter("count-accepted", stats.batches_accepted);
  setCounter("count-rejected", stats.batches_rejected);
  setCounter("count-violations", stats.total_violations);
  const types = $("known-types");
  types.replaceChildren(...stats.top_types.map((item) => el("option", { value: item.type })));
  const windowText = stats.minutes ? "last " + stats.per_minute.length + " minutes" : "last hour";
  let hint = windowText + " · " + stats.signals_in_window.toLocaleString() + " signals in the chosen window";
  if (stats.sampled) {
    hint += " · the charts below use the latest " + stats.chart_sample_rows.toLocaleString();
  }
  $("per-minute-hint").textContent = hint;

  perMinuteChart($("chart-per-minute"), stats.per_minute);
  barChart($("chart-types"), stats.top_types.map((i) => [i.type, i.count, String(i.count)]), "bar");
  barChart($("chart-routes"), stats.top_routes.map((i) => [i.route, i.count, String(i.count)]), "bar alt");
  barChart($("chart-durations"), stats.median_duration_by_route.map((i) =>
    [i.route, i.median_seconds, formatSeconds(i.median_seconds) + " · n=" + i.count]), "bar slow");

  const summary = $("rule-summary");
  summary.hidden = stats.violations_by_rule.length === 0;
  $("rule-list").replaceChildren(...stats.violations_by_rule.map((item) =>
    el("li", {}, el("span", { class: "rule" }, item.rule), " × " + item.count)));
}

// -- the web-dashboard panels ------------------------------------------------------------------

function renderDashboard(panels) {
  $("dashboard-hint").textContent = "latest " + panels.page_views.toLocaleString() + " page views";
  const rows = (items) => items.map((i) => [i.name, i.count, String(i.count)]);
  barChart($("chart-browsers"), rows(panels.browsers), "bar");
  barChart($("chart-systems"), rows(panels.systems), "bar alt");
  barChart($("chart-devices"), rows(panels.device_types), "bar");
  barChart($("chart-sources"), rows(panels.sources), "bar alt");
  barChart($("chart-visitors"), rows(panels.visitors), "bar");
  $("country-rows").replaceChildren(...panels.countries.map((item) =>
    el("tr", { class: "country", "data-code": item.name },
      el("td", {}, el("span", { class: "flag" }, flag(item.name)), " ", el("code", {}, item.name)),
      el("td", {}, String(item.count)))));
  hourChart($("chart-hours"), panels.views_by_hour);
}

// A country code as its flag: two regional-indicator letters.
function flag(code) {
  return /^[A-Z]{2}$/.test(code)
    ? String.fromCodePoint(...[...code].map((letter) => 0x1f1a5 + letter.charCodeAt(0)))
    : "";
}

function hourChart(svg, hours) {
  const width = 1200, height = 120, left = 36, bottom = 20, top = 8;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const peak = Math.max(1, ...hours.map((h) => h.count));
  const slot = (width - left) / 24;
  const nodes = [svgEl("text", { x: 0, y: top + 10, class: "axis" }, String(peak))];
  hours.forEach((hour, index) => {
    const barHeight = ((height - bottom - top) * hour.count) / peak;
    const x = left + index * slot;
    const bar = svgEl("rect", {
      x: x + 2, y: height - bottom - barHeight, width: slot - 4, height: barHeight, class: "bar hour",
    });
    bar.append(svgEl("title", {}, "hour " + hour.hour + ": " + hour.count));
    nodes.push(bar, svgEl("text", { x: x + slot / 2, y: height - 4, class: "axis", "text-anchor": "middle" },
      String(hour.hour)));
  });
  svg.replaceChildren(...nodes);
}

function setCounter(id, value) {
  const node = $(id);
  node.textContent = Number(value).toLocaleString();
  node.classList.toggle("nonzero", Number(value) > 0);
}

function formatSeconds(seconds) {
  return seconds < 1 ? Math.round(seconds * 1000) + " ms" : seconds.toFixed(2) + " s";
}

function perMinuteChart(svg, buckets) {
  const width = 1200, height = 150, left = 36, bottom = 20, top = 8;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const peak = Math.max(1, ...buckets.map((b) => b.count));
  const slot = (width - left) / Math.max(1, buckets.length);
  const nodes = [
    svgEl("text", { x: 0, y: top + 10, class: "axis" }, String(peak)),
    svgEl("text", { x: 0, y: height - bottom, class: "axis" }, "0"),
    svgEl("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, stroke: "#d0d5dd" }),
  ];
  buckets.forEach((bucket, index) => {
    const barHeight = ((height - bottom - top) * bucket.count) / peak;
    const x = left + index * slot;
    const bar = svgEl("rect", {
      x: x + 1, y: height - bottom - barHeight, width: Math.max(1, slot - 2), height: barHeight, class: "bar",
    });
    bar.append(svgEl("title", {}, minuteLabel(bucket.minute) + ": " + bucket.count));
    nodes.push(bar);
    const last = index === buckets.length - 1;
    // Every tenth minute, and the latest one (right-aligned so it is not clipped).
    if ((index % 10 === 0 && buckets.length - index > 4) || last) {
      const attrs = last
        ? { x: width, y: height - 4, class: "axis", "text-anchor": "end" }
        : { x, y: height - 4, class: "axis" };
      nodes.push(svgEl("text", attrs, minuteLabel(bucket.minute)));
    }
  });
  svg.replaceChildren(...nodes);
}

function minuteLabel(minute) {
  const date = new Date(minute + ":00Z");
  return Number.isNaN(date.getTime())
    ? minute
    : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

// rows: [label, value, text shown after the bar]
function barChart(svg, rows, barClass) {
  const width = 400, rowHeight = 22, labelWidth = 160, valueWidth = 110;
  const height = Math.max(rowHeight, rows.length * rowHeight);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  if (!rows.length) {
    svg.replaceChildren(svgEl("text", { x: 0, y: 15, class: "none" }, "nothing yet"));
    return;
  }
  const peak = Math.max(...rows.map((row) => row[1])) || 1;
  const nodes = [];
  rows.forEach(([label, value, text], index) => {
    const y = index * rowHeight;
    const barWidth = Math.max(2, ((width - labelWidth - valueWidth) * value) / peak);
    const labelNode = svgEl("text", { x: 0, y: y + 15 }, short(label, 24));
    labelNode.append(svgEl("title", {}, label));
    nodes.push(
      labelNode,
      svgEl("rect", { x: labelWidth, y: y + 4, width: barWidth, height: rowHeight - 8, rx: 2, class: barClass }),
      svgEl("text", { x: labelWidth + barWidth + 6, y: y + 15, class: "axis" }, text),
    );
  });
  svg.replaceChildren(...nodes);
}

// -- start ---------------------------------------------------------------------------------

function start() {
  loadFiltersFromUrl();
  const base = location.origin;
  $("endpoint-url").textContent = base;
  $("empty-example").textContent =
    "td = td_web.TelemetryDeck(app_id=\"...\", endpoint=\"" + base + "\")\n" +
    "td.signal(\"Example.started\")\n\n" +
    "td-web send Example.started --endpoint " + base + " --app-id <app id>";
  let debounce = null;
  for (const id of ["filter-type", "filter-session"]) {
    $(id).addEventListener("input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(filtersChanged, 300);
    });
  }
  for (const id of ["filter-test-mode", "filter-minutes"]) $(id).addEventListener("change", filtersChanged);
  $("filter-violations").addEventListener("change", () => { saveFiltersToUrl(); renderFeed(); });
  $("filter-clear").addEventListener("click", () => {
    $("filter-type").value = "";
    $("filter-session").value = "";
    $("filter-test-mode").value = "all";
    filtersChanged();
  });
  $("filters").addEventListener("submit", (event) => event.preventDefault());

  const loop = async () => {
    await poll(false);
    state.polls += 1;
    setTimeout(loop, POLL_MS);
  };
  renderFeed();
  loop();
}

document.addEventListener("DOMContentLoaded", start);
