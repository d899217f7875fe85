// Reflector control dashboard. No framework and no build step: the page is embedded in
// the control-plane binary and must work offline on a lab network.
"use strict";

const HISTORY = 120; // seconds of rates kept for the chart (one stats event per second)
const STREAMS_SHOWN = 20; // busiest streams listed for the selected reflector
const reflectors = new Map(); // id -> { view, stats, history: [{rx, tx, mbps}] }
let selected = null;
const streamsFetch = { busy: false, at: 0 }; // one request at a time, at most one a second

const $ = (sel, root = document) => root.querySelector(sel);
const fmt = (n) => Number(n ?? 0).toLocaleString("en-US", { maximumFractionDigits: 1 });
const DASH = "—";

// Nanoseconds, in the unit that reads best.
function fmtNs(ns) {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${ns} ns`;
}

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

async function call(method, path) {
  const response = await fetch(path, { method, headers: { Authorization: `Bearer ${token()}` } });
  if (!response.ok) {
    let error = `${response.status} ${response.statusText}`;
    try { error = (await response.json()).error || error; } catch (_) { /* not JSON */ }
    throw new Error(error);
  }
  return response.status === 204 ? null : response.json();
}

function entry(id) {
  if (!reflectors.has(id)) reflectors.set(id, { view: null, stats: null, history: [], streams: null });
  return reflectors.get(id);
}

function cell(row, cls, text) {
  let td = $(`td.${cls}`, row);
  if (!td) { td = document.createElement("td"); td.className = cls; row.appendChild(td); }
  td.textContent = text;
  return td;
}

function renderRow(id) {
  const { view, stats } = reflectors.get(id);
  const body = $("#reflectors tbody");
  let row = body.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = id;
    for (const cls of ["id", "state", "platform", "restarts num", "received num", "reflected num", "rejected num", "dwell num"]) {
      const td = document.createElement("td");
      td.className = cls;
      row.appendChild(td);
    }
    const actions = document.createElement("td");
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
  const stateCell = cell(row, "state", state);
  stateCell.classList.add("state");
  stateCell.classList.remove("running", "stopped", "backoff", "starting");
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
  cell(row, "dwell", d ? `${fmtNs(d.p50)} / ${fmtNs(d.p99)} / ${fmtNs(d.max)}` : DASH);
  $("button.start", row).disabled = state === "running" || state === "starting";
  $("button.stop", row).disabled = state === "stopped";
  row.classList.toggle("selected", id === selected);
  $("#empty").hidden = reflectors.size > 0;
}

function describePlatform(p) {
  const parts = [p.backend];
  if (p.xdp_mode) parts.push(`xdp ${p.xdp_mode}`);
  if (p.zero_copy !== null && p.zero_copy !== undefined) parts.push(p.zero_copy ? "zero-copy" : "copy");
  if (p.busy_poll) parts.push("busy-poll");
  parts.push(`${p.queues} queue${p.queues === 1 ? "" : "s"}`);
  return parts.join(", ");
}

function select(id) {
  selected = id;
  for (const row of document.querySelectorAll("#reflectors tbody tr")) {
    row.classList.toggle("selected", row.dataset.id === id);
  }
  renderDetail();
  loadStreams(true);
}

function fillTable(table, map) {
  const body = $("tbody", table);
  body.replaceChildren();
  for (const [name, value] of Object.entries(map || {})) {
    const row = document.createElement("tr");
    row.dataset.name = name;
    const key = document.createElement("td");
    key.textContent = name;
    const val = document.createElement("td");
    val.className = "num";
    val.textContent = fmt(value);
    row.append(key, val);
    body.appendChild(row);
  }
}

// The kernel's counters at the workers' sockets (frames lost before a worker saw them).
function kernelDrops(totals) {
  return {
    "rx ring full": totals.kernel_rx_ring_full,
    "no rx buffer": totals.kernel_rx_dropped,
    "fill ring empty": totals.kernel_fill_ring_empty,
    "tx invalid": totals.kernel_tx_invalid,
  };
}

function renderDetail() {
  const item = selected && reflectors.get(selected);
  $("#detail").hidden = !item;
  if (!item) return;
  $("#detail-id").textContent = selected;
  const rates = (item.stats && item.stats.rates) || { rx_pps: 0, tx_pps: 0, tx_mbps: 0 };
  $("#rx-pps").textContent = fmt(rates.rx_pps);
  $("#tx-pps").textContent = fmt(rates.tx_pps);
  $("#tx-mbps").textContent = rates.tx_mbps.toFixed(3);
  const d = dwell(item.stats);
  $("#dwell-p50").textContent = d ? fmtNs(d.p50) : DASH;
  $("#dwell-p99").textContent = d ? fmtNs(d.p99) : DASH;
  $("#dwell-max").textContent = d ? fmtNs(d.max) : DASH;
  $("#loop-timeout").hidden = !loopTimedOut(item);
  fillTable($("#signatures"), item.stats && item.stats.totals.signatures);
  fillTable($("#rejects"), item.stats && item.stats.totals.rejects);
  fillTable($("#kernel-drops"), item.stats && kernelDrops(item.stats.totals));
  drawChart(item.history);
  renderStreams(item.streams);
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
    td.colSpan = 11;
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
    const cells = [
      ["src-mac", s.src_mac], ["src-ip", s.src_ip], ["src-port num", s.src_port], ["dst-port num", s.dst_port],
      ["signature", s.signature], ["frames num", fmt(s.frames)], ["bytes num", fmt(s.bytes)],
      ["last-seen", seen.toLocaleTimeString("en-GB")],
      ["lost num", seq ? fmt(seq.lost) : DASH], ["reordered num", seq ? fmt(seq.reordered) : DASH],
      ["duplicated num", seq ? fmt(seq.duplicated) : DASH],
    ];
    for (const [cls, text] of cells) {
      const td = document.createElement("td");
      td.className = cls;
      td.textContent = text;
      if (cls === "last-seen") td.title = seen.toISOString();
      row.appendChild(td);
    }
    body.appendChild(row);
  }
}

// Packets per second on the left axis, Mbit/s on the right; each scales to its own peak.
function drawChart(history) {
  const canvas = $("#chart");
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const pad = { left: 60, right: 60, top: 10, bottom: 20 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  ctx.clearRect(0, 0, width, height);
  const maxPps = niceMax(Math.max(1, ...history.map((p) => Math.max(p.rx, p.tx))));
  const maxMbps = niceMax(Math.max(0.001, ...history.map((p) => p.mbps)));
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#e4e7eb";
  ctx.fillStyle = "#6a7482";
  for (let i = 0; i <= 4; i++) {
    const y = pad.top + h - (h * i) / 4;
    ctx.beginPath(); ctx.moveTo(pad.left, y); ctx.lineTo(pad.left + w, y); ctx.stroke();
    ctx.textAlign = "right"; ctx.fillText(fmt((maxPps * i) / 4), pad.left - 6, y + 4);
    ctx.textAlign = "left"; ctx.fillText(((maxMbps * i) / 4).toPrecision(3), pad.left + w + 6, y + 4);
  }
  ctx.textAlign = "center";
  ctx.fillText(`last ${HISTORY} s`, pad.left + w / 2, height - 4);
  const line = (key, max, colour) => {
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.beginPath();
    history.forEach((p, i) => {
      const x = pad.left + w - ((history.length - 1 - i) * w) / (HISTORY - 1);
      const y = pad.top + h - (p[key] / max) * h;
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke(); ctx.lineWidth = 1;
  };
  line("rx", maxPps, "#2f6fdb");
  line("tx", maxPps, "#1f9d55");
  line("mbps", maxMbps, "#c26a00");
}

function niceMax(value) {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
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
  item.history.push({ rx: stats.rates.rx_pps, tx: stats.rates.tx_pps, mbps: stats.rates.tx_mbps });
  if (item.history.length > HISTORY) item.history.shift();
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
  if (selected === id) { selected = reflectors.keys().next().value || null; renderDetail(); }
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
}

$("#token").value = token();
$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("reflector-token", $("#token").value.trim());
  showMessage("");
});

loadStats().catch((error) => showMessage(`loading reflectors: ${error.message}`)).finally(connect);
