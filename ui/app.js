// Reflector control dashboard. No framework and no build step: the page is embedded in
// the control-plane binary and must work offline on a lab network. Charts: charts.js;
// test heads: probes.js.
"use strict";

const WINDOW_S = 15 * 60; // seconds of rates the charts show (the server keeps as much)
const STREAMS_SHOWN = 20; // busiest streams listed for the selected reflector
// id -> { view, stats, series: [t[], rx_pps[], tx_pps[], rx_bps[], tx_bps[]], mark, streams }
const reflectors = new Map();
let selected = null;
const streamsFetch = { busy: false, at: 0 }; // one request at a time, at most one a second

const $ = (sel, root = document) => root.querySelector(sel);
const fmt = (n) => Number(n ?? 0).toLocaleString("en-US", { maximumFractionDigits: 1 });
const DASH = "—";

function dwell(stats) {
  const d = stats && stats.telemetry && stats.telemetry.dwell_ns;
  return d && d.count > 0 ? d : null;
}

function loopTimedOut({ view, stats }) {
  return Boolean((view && view.loop_timed_out) || (stats && stats.telemetry && stats.telemetry.loop_timed_out));
}

function token() { return localStorage.getItem("reflector-token") || ""; }

function showMessage(text) {
  const box = $("#message");
  box.textContent = text;
  box.hidden = !text;
}

async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) {
    let error = `${response.status} ${response.statusText}`;
    try { error = (await response.json()).error || error; } catch (_) { /* not JSON */ }
    throw new Error(error);
  }
  return response.status === 204 ? null : response.json();
}

function emptySeries() { return [[], [], [], [], []]; }

function entry(id) {
  if (!reflectors.has(id)) {
    reflectors.set(id, { view: null, stats: null, series: emptySeries(), mark: null, streams: null });
  }
  return reflectors.get(id);
}

// A cell by class; `label` names it in the phone layout, where rows become cards.
function cell(row, cls, text, label) {
  let td = $(`td.${cls.split(" ")[0]}`, row);
  if (!td) {
    td = document.createElement("td");
    td.className = cls;
    if (label) td.dataset.label = label;
    row.appendChild(td);
  }
  td.textContent = text;
  return td;
}

const REFLECTOR_COLUMNS = [
  ["id", "Reflector"], ["state", "State"], ["platform", "Platform"], ["restarts num", "Restarts"],
  ["received num", "Received"], ["reflected num", "Reflected"], ["rejected num", "Rejected"],
  ["dwell num", "Dwell p50 / p99 / max"],
];

function renderRow(id) {
  const { view, stats } = reflectors.get(id);
  const body = $("#reflectors tbody");
  let row = body.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = id;
    for (const [cls, label] of REFLECTOR_COLUMNS) cell(row, cls, "", label);
    const actions = document.createElement("td");
    actions.className = "actions";
    for (const action of ["start", "stop"]) {
      const button = document.createElement("button");
      button.className = action;
      button.textContent = action === "start" ? "Start" : "Stop";
      button.addEventListener("click", async (event) => {
        event.stopPropagation();
        try {
          showMessage("");
          const view = await call("POST", `/api/v1/reflectors/${encodeURIComponent(id)}/${action}`);
          entry(id).view = view;
          renderRow(id);
        } catch (error) {
          showMessage(`${action} ${id}: ${error.message}`);
        }
      });
      actions.appendChild(button);
      actions.append(" ");
    }
    row.appendChild(actions);
    row.addEventListener("click", () => select(id));
    body.appendChild(row);
  }
  const state = view ? view.state : (stats ? stats.state : "unknown");
  cell(row, "id", id);
  // "waiting_for_interface" reads "waiting for interface".
  const stateCell = cell(row, "state", state.replaceAll("_", " "));
  stateCell.classList.add("state");
  stateCell.classList.remove("running", "stopped", "backoff", "starting", "waiting_for_interface");
  stateCell.classList.add(state);
  if (view && view.last_error && state !== "running") {
    const err = document.createElement("div");
    err.className = "error";
    err.textContent = view.last_error;
    stateCell.appendChild(err);
  }
  if (loopTimedOut(reflectors.get(id))) {
    const badge = document.createElement("span");
    badge.className = "badge loop-timeout";
    badge.textContent = "loop timeout reached — not reflecting";
    stateCell.append(" ", badge);
  }
  const platform = (view && view.platform) || (stats && stats.platform);
  cell(row, "platform", platform ? describePlatform(platform) : "–");
  cell(row, "restarts", fmt(view ? view.restarts : stats.restarts));
  const totals = stats ? stats.totals : {};
  cell(row, "received", fmt(totals.received));
  cell(row, "reflected", fmt(totals.reflected));
  cell(row, "rejected", fmt(totals.rejected));
  const d = dwell(stats);
  cell(row, "dwell", d ? `${Charts.ns(d.p50)} / ${Charts.ns(d.p99)} / ${Charts.ns(d.max)}` : DASH);
  $("button.start", row).disabled = state === "running" || state === "starting";
  $("button.stop", row).disabled = state === "stopped";
  row.classList.toggle("selected", id === selected);
  $("#empty").hidden = reflectors.size > 0;
}

function describePlatform(p) {
  const parts = [p.backend];
  if (p.xdp_mode) parts.push(`xdp ${p.xdp_mode}`);
  if (p.zero_copy !== null && p.zero_copy !== undefined) parts.push(p.zero_copy ? "zero-copy" : "copy");
  if (p.xdp_send) parts.push("xdp send");
  if (p.busy_poll) parts.push("busy-poll");
  if (p.wake_latency !== null && p.wake_latency !== undefined) parts.push(`wake-latency ${p.wake_latency ? "on" : "off"}`);
  parts.push(`${p.queues} queue${p.queues === 1 ? "" : "s"}`);
  return parts.join(", ");
}

function select(id) {
  selected = id;
  for (const row of document.querySelectorAll("#reflectors tbody tr")) {
    row.classList.toggle("selected", row.dataset.id === id);
  }
  renderDetail();
  loadHistory(id);
  loadStreams(true);
}

// Counts by name, non-zero ones first (largest first); the zero rows are folded into
// one line that opens on click, so the reasons that happened stand out.
function fillTable(table, map) {
  const body = $("tbody", table);
  const open = Boolean($("tr.zeros.open", body));
  body.replaceChildren();
  const entries = Object.entries(map || {});
  const nonZero = entries.filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const zero = entries.filter(([, v]) => !(v > 0));
  const line = (name, value, cls) => {
    const row = document.createElement("tr");
    row.dataset.name = name;
    if (cls) row.className = cls;
    const key = document.createElement("td");
    key.textContent = name;
    const val = document.createElement("td");
    val.className = "num";
    val.textContent = fmt(value);
    row.append(key, val);
    body.appendChild(row);
  };
  for (const [name, value] of nonZero) line(name, value);
  if (zero.length === 0) return;
  const fold = document.createElement("tr");
  fold.className = `zeros${open ? " open" : ""}`;
  const td = document.createElement("td");
  td.colSpan = 2;
  const button = document.createElement("button");
  button.className = "link";
  button.textContent = `${open ? "▾" : "▸"} ${zero.length} at zero${nonZero.length ? "" : " (none happened)"}`;
  button.addEventListener("click", () => { fold.classList.toggle("open"); fillTable(table, map); });
  td.appendChild(button);
  fold.appendChild(td);
  body.appendChild(fold);
  if (open) for (const [name, value] of zero) line(name, value, "zero");
}

// The kernel's counters at the workers' sockets (frames lost before a worker saw them).
function kernelDrops(totals) {
  return {
    "rx ring full": totals.kernel_rx_ring_full,
    "no rx buffer": totals.kernel_rx_dropped,
    "fill ring empty": totals.kernel_fill_ring_empty,
    "tx invalid": totals.kernel_tx_invalid,
    "unserved queue": totals.kernel_unserved_queue,
  };
}

const charts = {};

function ensureCharts() {
  if (charts.pps) return;
  charts.pps = Charts.rates($("#chart-pps"), "pps", "Packets per second", "rates");
  charts.bps = Charts.rates($("#chart-bps"), "bit/s", "Bits per second", "rates");
  charts.dwell = Charts.bars($("#chart-dwell"), "Dwell time histogram", "frames", (v) => Charts.si(v));
}

function drawRates(series) {
  ensureCharts();
  charts.pps.setData([series[0], series[1], series[2]]);
  charts.bps.setData([series[0], series[3], series[4]]);
}

function renderDetail() {
  const item = selected && reflectors.get(selected);
  $("#detail").hidden = !item;
  if (!item) return;
  ensureCharts();
  $("#detail-id").textContent = selected;
  const s = item.series;
  const last = (i) => (s[0].length ? s[i][s[i].length - 1] : 0);
  $("#rx-pps").textContent = fmt(last(1));
  $("#tx-pps").textContent = fmt(last(2));
  $("#rx-bps").textContent = `${Charts.si(last(3), "bit/s")}`;
  $("#tx-bps").textContent = `${Charts.si(last(4), "bit/s")}`;
  const d = dwell(item.stats);
  $("#dwell-p50").textContent = d ? Charts.ns(d.p50) : DASH;
  $("#dwell-p99").textContent = d ? Charts.ns(d.p99) : DASH;
  $("#dwell-max").textContent = d ? Charts.ns(d.max) : DASH;
  const bars = Charts.histogram(item.stats && item.stats.telemetry.dwell_buckets);
  charts.dwell.set(bars.labels, bars.counts);
  $("#dwell-empty").hidden = bars.counts.length > 0;
  $("#loop-timeout").hidden = !loopTimedOut(item);
  const restarts = item.view ? item.view.restarts : (item.stats ? item.stats.restarts : 0);
  for (const note of document.querySelectorAll(".per-run")) {
    note.textContent = `Of the current worker run: starts afresh when the worker restarts${restarts ? ` (restarted ${fmt(restarts)}×)` : ""}.`;
  }
  fillTable($("#signatures"), item.stats && item.stats.totals.signatures);
  fillTable($("#rejects"), item.stats && item.stats.totals.rejects);
  fillTable($("#kernel-drops"), item.stats && kernelDrops(item.stats.totals));
  drawRates(item.series);
  renderStreams(item.streams);
  Probes.renderAll();
}

// The last 15 minutes from the server, so the charts start with the recent past.
async function loadHistory(id) {
  try {
    const response = await fetch(`/api/v1/reflectors/${encodeURIComponent(id)}/history`);
    if (!response.ok) return;
    const h = await response.json();
    const item = entry(id);
    const live = item.series;
    // Samples seen live before the history arrived come after it.
    const since = h.t_ms.length ? h.t_ms[h.t_ms.length - 1] / 1000 : -Infinity;
    const keep = live[0].map((t, i) => i).filter((i) => live[0][i] > since);
    item.series = [
      h.t_ms.map((t) => t / 1000).concat(keep.map((i) => live[0][i])),
      ...["rx_pps", "tx_pps", "rx_bps", "tx_bps"].map((k, n) => h[k].concat(keep.map((i) => live[n + 1][i]))),
    ];
    if (id === selected) renderDetail();
  } catch (_) {
    // Offline for a moment: the live samples still arrive.
  }
}

// Rates from the cumulative totals of consecutive stats events, one sample a second
// at most: the same rule as the server's history, so live and loaded points agree.
function addSample(item, totals) {
  const now = Date.now() / 1000;
  const mark = { at: now, received: totals.received, reflected: totals.reflected, rx: totals.rx_bytes, tx: totals.tx_bytes };
  if (!item.mark) { item.mark = mark; return; }
  const dt = now - item.mark.at;
  if (dt < 1) return;
  const rate = (a, b) => Math.max(0, a - b) / dt;
  const s = item.series;
  s[0].push(now);
  s[1].push(rate(mark.received, item.mark.received));
  s[2].push(rate(mark.reflected, item.mark.reflected));
  s[3].push(rate(mark.rx, item.mark.rx) * 8);
  s[4].push(rate(mark.tx, item.mark.tx) * 8);
  item.mark = mark;
  while (s[0].length && s[0][0] < now - WINDOW_S) for (const column of s) column.shift();
}

// The selected reflector's busiest streams, refreshed with its stats (at most 1/s).
async function loadStreams(force = false) {
  const id = selected;
  if (!id || streamsFetch.busy || (!force && Date.now() - streamsFetch.at < 1000)) return;
  streamsFetch.busy = true;
  streamsFetch.at = Date.now();
  try {
    const response = await fetch(`/api/v1/reflectors/${encodeURIComponent(id)}/streams?limit=${STREAMS_SHOWN}`);
    if (!response.ok) return; // removed meanwhile; the next event says so
    const streams = await response.json();
    if (reflectors.has(id)) {
      entry(id).streams = streams;
      if (id === selected) renderStreams(streams);
    }
  } catch (_) {
    // Offline for a moment: the event stream shows that; try again with the next stats.
  } finally {
    streamsFetch.busy = false;
  }
}

const STREAM_COLUMNS = [
  ["src-mac", "Source MAC"], ["src-ip", "Source IP"], ["src-port num", "Src port"], ["dst-port num", "Dst port"],
  ["signature", "Signature"], ["frames num", "Frames"], ["bytes num", "Bytes"], ["last-seen", "Last seen"],
  ["lost num", "Lost"], ["reordered num", "Reordered"], ["duplicated num", "Duplicated"],
];

function renderStreams(data) {
  const body = $("#streams tbody");
  const streams = data ? data.streams : [];
  $("#streams-summary").textContent = !data ? "" :
    `(${data.total > streams.length ? `busiest ${streams.length} of ${fmt(data.total)}` : fmt(data.total)}` +
    `${data.untracked_frames ? `; ${fmt(data.untracked_frames)} frames untracked` : ""})`;
  body.replaceChildren();
  if (streams.length === 0) {
    const row = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = STREAM_COLUMNS.length;
    td.className = "muted";
    td.textContent = "No streams (yet).";
    row.appendChild(td);
    body.appendChild(row);
    return;
  }
  for (const s of streams) {
    const row = document.createElement("tr");
    row.dataset.key = `${s.src_mac}|${s.src_ip}|${s.src_port}|${s.dst_port}|${s.signature}`;
    const seq = s.sequence;
    const seen = new Date(s.last_seen_ms);
    const values = [
      s.src_mac, s.src_ip, s.src_port, s.dst_port, s.signature, fmt(s.frames), fmt(s.bytes),
      seen.toLocaleTimeString("en-GB"),
      seq ? fmt(seq.lost) : DASH, seq ? fmt(seq.reordered) : DASH, seq ? fmt(seq.duplicated) : DASH,
    ];
    STREAM_COLUMNS.forEach(([cls, label], i) => {
      const td = cell(row, cls, values[i], label);
      if (cls === "last-seen") td.title = seen.toISOString();
    });
    body.appendChild(row);
  }
}

function onState(view) {
  entry(view.id).view = view;
  renderRow(view.id);
  if (!selected) select(view.id);
  else if (view.id === selected) renderDetail();
}

function onStats(stats) {
  const item = entry(stats.id);
  item.stats = stats;
  addSample(item, stats.totals);
  renderRow(stats.id);
  if (stats.id === selected) {
    renderDetail();
    loadStreams();
  }
}

function onRemoved({ id }) {
  reflectors.delete(id);
  const row = document.querySelector(`#reflectors tbody tr[data-id="${CSS.escape(id)}"]`);
  if (row) row.remove();
  if (selected === id) {
    selected = reflectors.keys().next().value || null;
    if (selected) select(selected); else renderDetail();
  }
  $("#empty").hidden = reflectors.size > 0;
}

async function loadStats() {
  // The event stream starts with every reflector's state; totals come from /stats.
  const list = await (await fetch("/api/v1/reflectors")).json();
  for (const view of list) {
    const stats = await (await fetch(`/api/v1/reflectors/${encodeURIComponent(view.id)}/stats`)).json();
    entry(view.id).stats = stats;
    onState(view);
  }
  $("#empty").hidden = reflectors.size > 0;
}

function connect() {
  const events = new EventSource("/api/v1/events");
  const badge = $("#connection");
  events.onopen = () => { badge.textContent = "live"; badge.classList.add("live"); };
  events.onerror = () => { badge.textContent = "reconnecting…"; badge.classList.remove("live"); };
  events.addEventListener("state", (e) => onState(JSON.parse(e.data)));
  events.addEventListener("stats", (e) => onStats(JSON.parse(e.data)));
  events.addEventListener("removed", (e) => onRemoved(JSON.parse(e.data)));
  events.addEventListener("probe", (e) => Probes.update(JSON.parse(e.data)));
  events.addEventListener("probe_removed", (e) => Probes.remove(JSON.parse(e.data)));
}

$("#token").value = token();
$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("reflector-token", $("#token").value.trim());
  showMessage("");
});

loadStats()
  .then(Probes.load)
  .catch((error) => showMessage(`loading reflectors: ${error.message}`))
  .finally(connect);
