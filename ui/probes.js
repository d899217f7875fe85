// The test heads (/api/v1/probes): a card per probe with its loss, reordering, RTT
// percentiles and RTT histogram, live from the event stream. A probe linked to a
// reflector is shown with that reflector's details; the others in their own section.
"use strict";

const Probes = (() => {
  const probes = new Map(); // id -> view
  const cards = new Map(); // id -> { card, chart }

  const pct = (part, whole) => (whole > 0 ? `${((part * 100) / whole).toFixed(3)} %` : "—");

  function fields(view) {
    const r = view.report;
    const rtt = r && r.rtt_ns.count > 0 ? r.rtt_ns : null;
    return [
      ["sent", r ? fmt(r.sent) : DASH],
      ["received", r ? fmt(r.received) : DASH],
      ["lost", r ? `${fmt(r.lost)} (${pct(r.lost, r.sent)})` : DASH],
      ["reordered", r ? fmt(r.reordered) : DASH],
      ["duplicated", r ? fmt(r.duplicated) : DASH],
      ["malformed", r ? fmt(r.malformed) : DASH],
      ["rtt-p50", rtt ? Charts.ns(rtt.p50) : DASH],
      ["rtt-p99", rtt ? Charts.ns(rtt.p99) : DASH],
      ["rtt-max", rtt ? Charts.ns(rtt.max) : DASH],
    ];
  }

  const LABELS = {
    sent: "Sent", received: "Received", lost: "Lost", reordered: "Reordered", duplicated: "Duplicated",
    malformed: "Malformed", "rtt-p50": "RTT p50", "rtt-p99": "RTT p99", "rtt-max": "RTT max",
  };

  function action(view, name) {
    const button = document.createElement("button");
    button.className = name;
    button.textContent = name === "start" ? "Start" : "Stop";
    button.addEventListener("click", async () => {
      try {
        showMessage("");
        button.disabled = true;
        update(await call("POST", `/api/v1/probes/${encodeURIComponent(view.id)}/${name}`));
      } catch (error) {
        showMessage(`${name} ${view.id}: ${error.message}`);
      }
    });
    return button;
  }

  function build(view) {
    const card = document.createElement("div");
    card.className = "probe";
    card.dataset.id = view.id;
    const head = document.createElement("div");
    head.className = "probe-head";
    const title = document.createElement("b");
    title.className = "title";
    const state = document.createElement("span");
    state.className = "state";
    head.append(title, " ", state, " ", action(view, "start"), " ", action(view, "stop"));
    const list = document.createElement("dl");
    for (const [key] of fields(view)) {
      // A label and its value stay together in the grid, however many columns fit.
      const pair = document.createElement("div");
      const dt = document.createElement("dt");
      dt.textContent = LABELS[key];
      const dd = document.createElement("dd");
      dd.className = key;
      pair.append(dt, dd);
      list.append(pair);
    }
    const error = document.createElement("p");
    error.className = "error";
    const chart = document.createElement("div");
    chart.className = "chart rtt";
    card.append(head, error, list, chart);
    return { card, chart: null, chartBox: chart };
  }

  // Where a probe's card goes: with its reflector when that one is selected, else in
  // the section of unlinked probes (or nowhere while another reflector is selected).
  function place(view, entry) {
    const linked = view.settings.reflector && reflectors.has(view.settings.reflector);
    const box = !linked ? $("#other-probes .list") : view.settings.reflector === selected ? $("#probes") : null;
    if (!box) { entry.card.remove(); return false; }
    if (entry.card.parentElement !== box) box.appendChild(entry.card);
    return true;
  }

  function render(view) {
    let entry = cards.get(view.id);
    if (!entry) { entry = build(view); cards.set(view.id, entry); }
    if (!place(view, entry)) return;
    const { card } = entry;
    const s = view.settings;
    $(".title", card).textContent = `${view.id} → ${s.to} from ${s.interface}${s.netns ? ` (netns ${s.netns})` : ""}, ${fmt(s.rate)} pps ${s.signature}`;
    const state = $(".state", card);
    state.textContent = view.state;
    state.className = `state ${view.state}`;
    $("button.start", card).disabled = view.state === "running";
    $("button.stop", card).disabled = view.state !== "running";
    $(".error", card).textContent = view.last_error || "";
    for (const [key, value] of fields(view)) $(`dd.${key}`, card).textContent = value;
    if (!entry.chart) entry.chart = Charts.bars(entry.chartBox, "Round-trip time histogram", "frames", (v) => Charts.si(v));
    const bars = Charts.histogram(view.report && view.report.rtt_buckets);
    entry.chart.set(bars.labels, bars.counts);
  }

  function renderAll() {
    for (const view of probes.values()) render(view);
    $("#other-probes").hidden = $("#other-probes .list").children.length === 0;
    $("#probes-heading").hidden = $("#probes").children.length === 0;
  }

  function update(view) {
    probes.set(view.id, view);
    renderAll();
  }

  function remove({ id }) {
    probes.delete(id);
    const entry = cards.get(id);
    if (entry) entry.card.remove();
    cards.delete(id);
    renderAll();
  }

  async function load() {
    const response = await fetch("/api/v1/probes");
    if (!response.ok) return;
    for (const view of await response.json()) probes.set(view.id, view);
    renderAll();
  }

  return { update, remove, load, renderAll };
})();
