// The dashboard's charts, on the vendored uPlot (ui/vendor/): rates over time with
// units on the axes and values on hover, and bar charts of latency distributions.
// Sizes follow the chart's container, so the same code serves a phone and a desktop.
"use strict";

const Charts = (() => {
  const COLOURS = { rx: "#2f6fdb", tx: "#1f9d55", bar: "#7b61c9" };
  const HEIGHT = 200;

  // 1234567 -> "1.23 M": SI prefixes, three significant digits.
  function si(value, unit = "") {
    const v = Math.abs(value);
    const [div, prefix] = v >= 1e9 ? [1e9, "G"] : v >= 1e6 ? [1e6, "M"] : v >= 1e3 ? [1e3, "k"] : [1, ""];
    const scaled = value / div;
    const text = Number.isInteger(scaled) ? String(scaled) : scaled.toPrecision(3).replace(/\.?0+$/, "");
    return `${text}${prefix || unit ? " " : ""}${prefix}${unit}`;
  }

  // Nanoseconds, in the unit that reads best.
  function ns(value) {
    if (value >= 1e9) return `${(value / 1e9).toFixed(2)} s`;
    if (value >= 1e6) return `${(value / 1e6).toFixed(2)} ms`;
    if (value >= 1e3) return `${(value / 1e3).toFixed(1)} µs`;
    return `${Math.round(value)} ns`;
  }

  const widthOf = (el) => Math.max(200, Math.floor(el.clientWidth));
  const AXIS = { stroke: "#6a7482", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e4e7eb" }, font: "12px system-ui, sans-serif", labelFont: "12px system-ui, sans-serif" };

  const all = [];
  // One listener resizes every chart to its container (phone rotation, window drag).
  let resizeQueued = false;
  window.addEventListener("resize", () => {
    if (resizeQueued) return;
    resizeQueued = true;
    requestAnimationFrame(() => {
      resizeQueued = false;
      for (const { plot, el } of all) plot.setSize({ width: widthOf(el), height: HEIGHT });
    });
  });

  function mount(el, opts, data) {
    el.replaceChildren();
    const plot = new uPlot({ width: widthOf(el), height: HEIGHT, ...opts }, data, el);
    all.push({ plot, el });
    return plot;
  }

  // A time series of rx and tx in `unit` (e.g. "pps", "bit/s"); `data` is
  // [seconds[], rx[], tx[]]. Cursors of charts in the same `group` move together.
  function rates(el, unit, title, group) {
    const value = (u, v) => (v == null ? "—" : `${si(v)} ${unit}`);
    return mount(el, {
      title,
      cursor: { sync: { key: group }, drag: { x: false, y: false } },
      // At least a minute wide, so a fresh chart does not read in fractions of a second.
      scales: {
        x: { time: true, range: (u, min, max) => (min == null ? [0, 60] : [Math.min(min, max - 60), max]) },
        y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] },
      },
      series: [
        { value: (u, t) => (t == null ? "—" : new Date(t * 1000).toLocaleTimeString("en-GB")) },
        { label: "rx", stroke: COLOURS.rx, width: 2, value },
        { label: "tx", stroke: COLOURS.tx, width: 2, value },
      ],
      axes: [
        { ...AXIS, space: 70 },
        { ...AXIS, label: unit, labelSize: 18, size: 52, values: (u, splits) => splits.map((v) => si(v)) },
      ],
    }, [[], [], []]);
  }

  // Bars over named buckets: `labels[i]` under bar i, `counts[i]` its height. The
  // y values are formatted with `format`, the hover shows `describe(i)`.
  function bars(el, title, seriesLabel, format) {
    const state = { labels: [] };
    const plot = mount(el, {
      title,
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: {
        x: { time: false, range: (u) => [-0.5, Math.max(1, state.labels.length) - 0.5] },
        y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] },
      },
      series: [
        { label: "bucket", value: (u, i) => (i == null ? "—" : state.labels[Math.round(i)] ?? "") },
        {
          label: seriesLabel, fill: COLOURS.bar + "99", stroke: COLOURS.bar, width: 1,
          paths: uPlot.paths.bars({ size: [0.8, 48], align: 0 }),
          points: { show: false },
          value: (u, v) => (v == null ? "—" : format(v)),
        },
      ],
      axes: [
        {
          ...AXIS, space: 52, incrs: [1, 2, 5, 10, 20],
          values: (u, splits) => splits.map((i) => (Number.isInteger(i) ? state.labels[i] ?? "" : "")),
        },
        { ...AXIS, size: 60, values: (u, splits) => splits.map(format) },
      ],
    }, [[], []]);
    return {
      plot,
      set(labels, values) {
        state.labels = labels;
        plot.setData([labels.map((_, i) => i), values]);
      },
    };
  }

  // A histogram report ({bounds_ns, le: cumulative counts, count}) as bars: one per
  // bucket, from the first that holds samples to the last, labelled by upper bound.
  function histogram(report) {
    if (!report || !report.count || !report.bounds_ns || report.bounds_ns.length === 0) return { labels: [], counts: [] };
    // "250 µs", "2.5 ms", "1 ms": axis room is scarce.
    const short = (v) => ns(v).replace(/(\.\d*?)0+ /, "$1 ").replace(/\. /, " ");
    const labels = report.bounds_ns.map((b) => `≤${short(b)}`).concat(`>${short(report.bounds_ns[report.bounds_ns.length - 1])}`);
    const cumulative = report.le.concat(report.count);
    const counts = cumulative.map((c, i) => c - (i ? cumulative[i - 1] : 0));
    const first = counts.findIndex((c) => c > 0);
    const last = counts.length - 1 - [...counts].reverse().findIndex((c) => c > 0);
    return { labels: labels.slice(first, last + 1), counts: counts.slice(first, last + 1) };
  }

  return { si, ns, rates, bars, histogram };
})();
