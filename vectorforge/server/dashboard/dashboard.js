// The vectorforge dashboard: fetches JSON from /dashboard/api/... and draws it.
//
// Every string that comes from data enters the DOM through textContent (the `el` helper) and never
// as markup; strings handed to Plotly, which reads a little HTML in names and labels, are escaped
// first (`plotlyText`). The API key, if the server needs one, comes from `?key=` or `#key=` (then
// removed from the address bar) or from the form, lives in sessionStorage (gone with the tab) and is
// sent as `Authorization: Bearer <key>`.
"use strict";

(function () {
  const KEY_STORE = "vectorforge.dashboard.key";
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf"];
  const NUMBER = new Intl.NumberFormat("en-US");
  const state = { runs: [], metric: null, series: {}, onlineMetric: null };

  // -- DOM helpers ---------------------------------------------------------------------------------

  function $(id) {
    return document.getElementById(id);
  }

  // An element with text (never parsed as HTML) and optional class.
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) tr.appendChild(cell);
    return tr;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // Plotly reads <b>, <br>, <a> and entities in names and labels: escape so data shows as typed.
  function plotlyText(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  // "2026-11-14T09:30:00+00:00" -> "2026-11-14 09:30" (the time as recorded, UTC).
  function when(iso) {
    return String(iso).replace("T", " ").slice(0, 16);
  }

  function fixed(value) {
    return typeof value === "number" && Number.isFinite(value) ? value.toFixed(3) : "\u2014";
  }

  // -- the key -------------------------------------------------------------------------------------

  function takeKeyFromAddress() {
    const url = new URL(window.location.href);
    const fragment = new URLSearchParams(url.hash.slice(1));
    const key = url.searchParams.get("key") || fragment.get("key");
    if (url.searchParams.has("key") || fragment.has("key")) {
      url.searchParams.delete("key");
      fragment.delete("key");
      const rest = fragment.toString();
      window.history.replaceState(null, "", url.pathname + url.search + (rest ? "#" + rest : ""));
    }
    if (key) sessionStorage.setItem(KEY_STORE, key);
  }

  function currentKey() {
    return sessionStorage.getItem(KEY_STORE);
  }

  // -- fetching ------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, error, message) {
      super(message);
      this.status = status;
      this.error = error;
    }
  }

  // GET `path` (or send `init.body` with `init.method` and `init.type`) and read the JSON answer.
  async function fetchJson(path, init) {
    const headers = { Accept: "application/json" };
    const key = currentKey();
    if (key) headers.Authorization = "Bearer " + key;
    const options = { headers, cache: "no-store", credentials: "omit" };
    if (init) {
      options.method = init.method;
      options.body = init.body;
      headers["Content-Type"] = init.type;
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (exc) {
      throw new ApiError(0, "NetworkError", "the server cannot be reached (" + exc.message + ")");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (exc) {
      body = null;
    }
    if (!response.ok) {
      const message = body && typeof body.message === "string" ? body.message : response.statusText;
      throw new ApiError(response.status, body && body.error, message);
    }
    return body;
  }

  // -- notices -------------------------------------------------------------------------------------

  function showNotice(text) {
    const notice = $("notice");
    notice.textContent = text;
    notice.hidden = false;
  }

  function hideData() {
    for (const id of ["collections", "evaluation", "online"]) $(id).hidden = true;
    clear($("collections-table").tBodies[0]);
    clear($("evaluation-charts"));
    for (const id of ["series-charts", "drift-charts"]) purgeCharts($(id));
    for (const id of ["experiments-table", "drift-table", "shadow-table"]) clear($(id).tBodies[0]);
    state.runs = [];
    state.series = {};
  }

  function explain(exc) {
    if (exc.status === 401) {
      return currentKey()
        ? "The key was not accepted (unknown or revoked): enter another API key above."
        : "A key is needed to view this server's data: enter an API key above, or open " +
          "/dashboard?key=<your key>.";
    }
    if (exc.status === 403) return "This key may not view this data: " + exc.message;
    if (exc.status === 0) return "The server cannot be reached: " + exc.message;
    return "The server answered " + exc.status + ": " + exc.message;
  }

  // -- the collections panel -----------------------------------------------------------------------

  function vectorsText(c) {
    const named = c.vectors.filter((v) => v !== "");
    const dense = c.dim === null ? "" : c.dim + "d " + (c.metric || "") + " " + (c.index || "");
    return [dense.trim(), ...named.map((v) => "\u201c" + v + "\u201d")].filter(Boolean).join(", ");
  }

  function renderCollections(data) {
    const section = $("collections");
    const body = $("collections-table").tBodies[0];
    clear(body);
    for (const c of data.collections) {
      const indexes = Object.entries(c.payload_indexes).map(([k, v]) => k + " (" + v + ")").join(", ");
      const tr = row([
        el("td", c.name, "name"),
        el("td", NUMBER.format(c.points), "num points"),
        el("td", vectorsText(c)),
        el("td", c.embedder || "\u2014"),
        el("td", c.shards, "num"),
        el("td", c.replicas, "num"),
        el("td", c.segments, "num"),
        el("td", indexes || "\u2014", "indexes"),
        c.failed ? el("td", "refuses writes: " + c.failed, "failed") : el("td", "ok"),
      ]);
      tr.dataset.collection = c.name;
      body.appendChild(tr);
    }
    $("collections-empty").hidden = data.collections.length > 0;
    $("collections-table").hidden = data.collections.length === 0;
    section.hidden = false;
  }

  // -- the evaluation panels -----------------------------------------------------------------------

  function metricsOf(runs) {
    const names = new Set();
    for (const run of runs) {
      for (const scores of Object.values(run.segments)) for (const m of Object.keys(scores)) names.add(m);
    }
    return [...names].sort();
  }

  function groupBy(items, keyOf) {
    const groups = new Map();
    for (const item of items) {
      const key = keyOf(item);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(item);
    }
    return groups;
  }

  // "all" first, then by name, numbers in names compared as numbers ("len 2" before "len 10").
  function segmentsOf(run) {
    const order = (a, b) => (b === "all") - (a === "all") || a.localeCompare(b, "en", { numeric: true });
    return Object.entries(run.segments).sort(([a], [b]) => order(a, b));
  }

  function byTime(a, b) {
    return Date.parse(a.created_at) - Date.parse(b.created_at) || a.run_id.localeCompare(b.run_id);
  }

  function rgba(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  // Three traces per line: the interval's upper edge, its lower edge filled up to it, the mean.
  function tracesFor(runs, metric) {
    const collections = new Set(runs.map((r) => r.collection));
    const lines = new Map(); // line name -> {x, mean, low, high, n, run}
    for (const run of runs) {
      for (const [segment, scores] of segmentsOf(run)) {
        const score = scores[metric];
        if (!score) continue;
        const name = collections.size > 1 ? run.collection + " \u00b7 " + segment : segment;
        if (!lines.has(name)) lines.set(name, { x: [], mean: [], low: [], high: [], custom: [] });
        const line = lines.get(name);
        line.x.push(run.created_at);
        line.mean.push(score.mean);
        line.low.push(score.low);
        line.high.push(score.high);
        line.custom.push([plotlyText(run.run_id), score.n, fixed(score.low), fixed(score.high)]);
      }
    }
    const traces = [];
    let i = 0;
    for (const [name, line] of lines) {
      const color = COLORS[i++ % COLORS.length];
      const group = plotlyText(name);
      const edge = { x: line.x, mode: "lines", line: { width: 0, color }, hoverinfo: "skip",
        showlegend: false, legendgroup: group, type: "scatter" };
      traces.push({ ...edge, y: line.high, name: group + " high" });
      traces.push({ ...edge, y: line.low, name: group + " low", fill: "tonexty", fillcolor: rgba(color, 0.18) });
      traces.push({
        x: line.x, y: line.mean, customdata: line.custom, name: group, legendgroup: group,
        type: "scatter", mode: "lines+markers", line: { color, width: 2 }, marker: { size: 6 },
        hovertemplate: group + ": %{y:.3f} [%{customdata[2]}, %{customdata[3]}], n=%{customdata[1]}" +
          "<br>run %{customdata[0]}<extra></extra>",
      });
    }
    return traces;
  }

  function renderCharts(runs, metric) {
    const charts = $("evaluation-charts");
    if (window.Plotly) for (const div of charts.querySelectorAll(".chart")) window.Plotly.purge(div);
    clear(charts);
    const goldsets = groupBy([...runs].sort(byTime), (r) => r.goldset);
    for (const name of [...goldsets.keys()].sort()) {
      const goldRuns = goldsets.get(name);
      const card = el("div", null, "chart-card");
      card.dataset.goldset = name;
      const versions = [...new Set(goldRuns.map((r) => r.goldset_version))];
      card.appendChild(el("h4", name + " (" + goldRuns.length + " runs, versions " + versions.join(", ") + ")"));
      const div = el("div", null, "chart");
      card.appendChild(div);
      charts.appendChild(card);
      const layout = {
        margin: { l: 50, r: 10, t: 10, b: 40 },
        xaxis: { type: "date" },
        yaxis: { title: { text: plotlyText(metric) } },
        legend: { orientation: "h", y: -0.2 },
        hovermode: "closest",
      };
      window.Plotly.newPlot(div, tracesFor(goldRuns, metric), layout, { displaylogo: false, responsive: true });
    }
  }

  // The latest run of each gold set on each collection, one row per segment.
  function renderLatest(runs) {
    const table = $("latest-table");
    const groups = groupBy([...runs].sort(byTime), (r) => JSON.stringify([r.goldset, r.collection]));
    const latest = [...groups.values()].map((g) => g[g.length - 1]);
    latest.sort((a, b) => a.goldset.localeCompare(b.goldset) || a.collection.localeCompare(b.collection));
    const metrics = metricsOf(latest);
    clear(table.tHead);
    clear(table.tBodies[0]);
    table.tHead.appendChild(row([
      el("th", "Gold set"), el("th", "Collection"), el("th", "Run"), el("th", "Segment"), el("th", "n", "num"),
      ...metrics.map((m) => el("th", m, "num")),
    ]));
    for (const run of latest) {
      for (const [segment, scores] of segmentsOf(run)) {
        const first = Object.values(scores)[0];
        const tr = row([
          el("td", run.goldset), el("td", run.collection), el("td", when(run.created_at) + " \u00b7 " + run.run_id),
          el("td", segment), el("td", first ? first.n : "\u2014", "num"),
          ...metrics.map((m) => {
            const s = scores[m];
            return el("td", s ? fixed(s.mean) + " [" + fixed(s.low) + ", " + fixed(s.high) + "]" : "\u2014", "num");
          }),
        ]);
        tr.dataset.goldset = run.goldset;
        tr.dataset.segment = segment;
        table.tBodies[0].appendChild(tr);
      }
    }
  }

  function runLabel(run) {
    return run.goldset + " \u00b7 " + run.collection + " \u00b7 " + when(run.created_at) + " \u00b7 " + run.run_id;
  }

  function fillRunSelect(select, runs, chosen) {
    clear(select);
    for (const run of runs) {
      const option = el("option", runLabel(run));
      option.value = run.run_id;
      select.appendChild(option);
    }
    if (chosen) select.value = chosen.run_id;
  }

  // B against A with the server's paired test (GET /evaluation/compare): per segment and metric the
  // difference, Holm's p, Cohen's d and the verdict the regression rules give.
  async function renderComparison() {
    const runs = state.runs;
    const a = runs.find((r) => r.run_id === $("compare-a").value);
    const b = runs.find((r) => r.run_id === $("compare-b").value);
    const body = $("compare-table").tBodies[0];
    clear(body);
    const note = $("compare-note");
    note.hidden = true;
    if (!a || !b) return;
    if (a.run_id === b.run_id) {
      note.textContent = "Choose two different runs to compare.";
      note.hidden = false;
      return;
    }
    if (a.goldset !== b.goldset) {
      note.textContent = "The runs are of different gold sets: only runs of one gold set can be paired.";
      note.hidden = false;
      return;
    }
    const query = new URLSearchParams({ baseline: a.run_id, candidate: b.run_id });
    let answer;
    try {
      answer = await fetchJson("/evaluation/compare?" + query.toString());
    } catch (exc) {
      if (!(exc instanceof ApiError)) throw exc;
      note.textContent = "No comparison: " + exc.message;
      note.hidden = false;
      return;
    }
    if ($("compare-a").value !== a.run_id || $("compare-b").value !== b.run_id) return; // changed meanwhile
    if (a.goldset_version !== b.goldset_version) {
      note.textContent = "The runs are of different gold set versions: only the queries both scored are paired.";
      note.hidden = false;
    }
    for (const c of answer.changes) {
      let verdict = "";
      let verdictClass = "";
      if (c.regression) {
        verdict = "regression";
        verdictClass = "worse";
      } else if (c.improvement) {
        verdict = "improvement";
        verdictClass = "better";
      } else if (c.underpowered) {
        verdict = "too few queries to tell";
      }
      const d = typeof c.effect_size === "number" ? (c.effect_size >= 0 ? "+" : "") + c.effect_size.toFixed(2) : "\u2014";
      const tr = row([
        el("td", c.segment), el("td", c.metric), el("td", NUMBER.format(c.n), "num"),
        el("td", fixed(c.baseline), "num"), el("td", fixed(c.candidate), "num"),
        el("td", (c.diff >= 0 ? "+" : "") + fixed(c.diff), "num"),
        el("td", c.p_adjusted < 0.001 ? "<0.001" : c.p_adjusted.toFixed(3), "num"),
        el("td", d, "num"), el("td", verdict, verdictClass),
      ]);
      tr.dataset.segment = c.segment;
      tr.dataset.metric = c.metric;
      body.appendChild(tr);
    }
  }

  function renderEvaluation(data) {
    const runs = [...data.runs].sort(byTime);
    state.runs = runs;
    const empty = runs.length === 0;
    $("evaluation-empty").hidden = !empty;
    $("evaluation-body").hidden = empty;
    $("evaluation").hidden = false;
    if (empty) {
      clear($("evaluation-charts"));
      return;
    }
    const metrics = metricsOf(runs);
    if (!metrics.includes(state.metric)) state.metric = metrics.includes("ndcg@10") ? "ndcg@10" : metrics[0];
    const select = $("metric-select");
    clear(select);
    for (const m of metrics) {
      const option = el("option", m);
      option.value = m;
      select.appendChild(option);
    }
    select.value = state.metric;
    renderCharts(runs, state.metric);
    renderLatest(runs);
    const latest = runs[runs.length - 1];
    const previous = [...runs].reverse().find((r) => r !== latest && r.goldset === latest.goldset) || latest;
    fillRunSelect($("compare-a"), runs, previous);
    fillRunSelect($("compare-b"), runs, latest);
    renderComparison();
  }

  // -- the online section --------------------------------------------------------------------------

  // Seconds since the epoch -> an ISO time Plotly reads as a date (UTC).
  function isoOf(seconds) {
    return new Date(seconds * 1000).toISOString();
  }

  function pValue(p) {
    if (typeof p !== "number" || !Number.isFinite(p)) return "\u2014";
    return p < 0.001 ? "<0.001" : p.toFixed(3);
  }

  function signed(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return "\u2014";
    return (value >= 0 ? "+" : "") + value.toFixed(3);
  }

  function count(value) {
    return typeof value === "number" && Number.isFinite(value) ? NUMBER.format(value) : "\u2014";
  }

  // A cell holding one line (a div) per entry: [text, className?] pairs or plain strings.
  function linesCell(lines, className) {
    const td = el("td", null, "lines" + (className ? " " + className : ""));
    for (const line of lines) {
      const [text, cls] = Array.isArray(line) ? line : [line, ""];
      td.appendChild(el("div", text, cls));
    }
    if (lines.length === 0) td.textContent = "\u2014";
    return td;
  }

  const SERIES_SKIP = new Set(["start", "end", "searches"]);

  function seriesMetricsOf(series) {
    const names = new Set();
    for (const windows of Object.values(series)) {
      for (const w of windows) for (const m of Object.keys(w)) if (!SERIES_SKIP.has(m)) names.add(m);
    }
    return [...names].sort();
  }

  function purgeCharts(container) {
    if (window.Plotly) for (const div of container.querySelectorAll(".chart")) window.Plotly.purge(div);
    clear(container);
  }

  function chartCard(container, title, dataKey, dataValue) {
    const card = el("div", null, "chart-card");
    card.dataset[dataKey] = dataValue;
    card.appendChild(el("h4", title));
    const div = el("div", null, "chart small");
    card.appendChild(div);
    container.appendChild(card);
    return div;
  }

  // One chart per collection: the metric per window (a line; gaps where a window had no searches)
  // and the searches per window (bars, on the right axis).
  function renderSeriesCharts(series, metric) {
    const charts = $("series-charts");
    purgeCharts(charts);
    for (const name of Object.keys(series).sort()) {
      const windows = series[name];
      const total = windows.reduce((n, w) => n + (w.searches || 0), 0);
      const div = chartCard(charts, name + " (" + NUMBER.format(total) + " searches)", "collection", name);
      const x = windows.map((w) => isoOf(w.start));
      const label = plotlyText(metric);
      const traces = [
        {
          x, y: windows.map((w) => (typeof w[metric] === "number" ? w[metric] : null)), name: label,
          type: "scatter", mode: "lines+markers", line: { color: COLORS[0], width: 2 }, marker: { size: 6 },
          connectgaps: false, hovertemplate: label + ": %{y:.3f}<extra></extra>",
        },
        {
          x, y: windows.map((w) => w.searches || 0), name: "searches", type: "bar", yaxis: "y2",
          marker: { color: rgba(COLORS[7], 0.3) }, hovertemplate: "%{y} searches<extra></extra>",
        },
      ];
      const layout = {
        margin: { l: 50, r: 50, t: 10, b: 40 },
        xaxis: { type: "date" },
        yaxis: { title: { text: label }, rangemode: "tozero" },
        yaxis2: { title: { text: "searches" }, overlaying: "y", side: "right", rangemode: "tozero",
          showgrid: false, tickmode: "auto" },
        legend: { orientation: "h", y: -0.25 },
        hovermode: "x unified",
      };
      window.Plotly.newPlot(div, traces, layout, { displaylogo: false, responsive: true });
    }
  }

  function renderSeries(series) {
    state.series = series;
    const names = Object.keys(series).filter((n) => series[n].length > 0);
    const empty = names.length === 0;
    $("series-empty").hidden = !empty;
    $("series-body").hidden = empty;
    if (empty) {
      purgeCharts($("series-charts"));
      return;
    }
    const metrics = seriesMetricsOf(series);
    if (!metrics.includes(state.onlineMetric)) {
      state.onlineMetric = metrics.find((m) => m.startsWith("ctr@")) || metrics[0];
    }
    const select = $("online-metric-select");
    clear(select);
    for (const m of metrics) {
      const option = el("option", m);
      option.value = m;
      select.appendChild(option);
    }
    select.value = state.onlineMetric;
    renderSeriesCharts(series, state.onlineMetric);
  }

  // Higher is better for every compared metric (ctr, success, mrr): a significant difference is
  // "better" or "worse" for the treatment.
  function comparisonLine(c, control) {
    let verdict = "no significant difference";
    let cls = "";
    if (c.significant) {
      verdict = c.diff > 0 ? "better" : "worse";
      cls = c.diff > 0 ? "better" : "worse";
    }
    const text = c.metric + " (" + c.method + ") " + c.arm + " \u2212 " + control + ": " + signed(c.diff) +
      " [" + fixed(c.ci_low) + ", " + fixed(c.ci_high) + "], p " + pValue(c.p_value) + " \u2014 " + verdict;
    return [text, cls];
  }

  function armsLines(report) {
    const exp = report.experiment;
    const lines = [];
    for (const [arm, metrics] of Object.entries(report.arms || {})) {
      const spec = exp.arms[arm];
      // An interleaving experiment logs one merged arm: name the two it merges.
      const where = spec ? spec.collection : Object.keys(exp.arms).join(" \u00b7 ");
      const role = exp.kind === "ab" && arm === Object.keys(exp.arms)[0] ? ", control" : "";
      const k = "ctr@" + exp.k;
      const stats = metrics
        ? NUMBER.format(metrics.searches) + " searches, " + k + " " + fixed(metrics[k])
        : "no searches";
      lines.push(arm + " (" + where + role + "): " + stats);
    }
    return lines;
  }

  function interleavingLines(report) {
    const r = report.interleaving;
    if (!r) return report.experiment.kind === "interleaving" ? ["no clicked searches yet"] : [];
    let preference = "no significant preference";
    if (r.significant) preference = "prefers " + (r.delta > 0 ? r.arm_b : r.arm_a);
    return [
      r.arm_a + " wins " + r.wins_a + ", " + r.arm_b + " wins " + r.wins_b + ", ties " + r.ties,
      "\u0394 " + signed(r.delta) + " [" + fixed(r.ci_low) + ", " + fixed(r.ci_high) + "], p " + pValue(r.p_value),
      [preference, r.significant ? "better" : ""],
    ];
  }

  function guardrailLines(report) {
    const g = report.guardrails;
    if (!g) return [];
    if (g.stop) return g.reasons.map((reason) => ["stop: " + reason, "worse"]);
    const rails = report.experiment.guardrails || {};
    const limits = [];
    if (typeof rails.latency_p95_ratio === "number") {
      limits.push("p95 latency \u2264 " + rails.latency_p95_ratio + "\u00d7 control");
    }
    if (typeof rails.zero_result_increase === "number") {
      limits.push("zero results \u2264 control + " + rails.zero_result_increase);
    }
    if (limits.length === 0) return ["none set"];
    // The guardrails are checked only once every arm holds min_searches searches.
    const fewest = Math.min(...Object.values(report.arms || {}).map((m) => (m ? m.searches : 0)));
    if (!(fewest >= g.min_searches)) {
      return ["not checked yet: needs " + NUMBER.format(g.min_searches) + " searches per arm (fewest " +
        NUMBER.format(Number.isFinite(fewest) ? fewest : 0) + ")", limits.join("; ")];
    }
    return [["ok", "better"], limits.join("; ")];
  }

  function renderExperiments(experiments) {
    const table = $("experiments-table");
    const body = table.tBodies[0];
    clear(body);
    for (const report of experiments) {
      const exp = report.experiment;
      const control = Object.keys(exp.arms)[0];
      const status = report.status + (report.stop_reason ? " (" + report.stop_reason + ")" : "");
      const tr = row([
        el("td", exp.name, "name"),
        el("td", exp.kind === "ab" ? "A/B" : exp.kind),
        el("td", status, report.status === "running" ? "better" : ""),
        linesCell(armsLines(report), "arms"),
        linesCell((report.comparisons || []).map((c) => comparisonLine(c, control)), "comparisons"),
        linesCell(interleavingLines(report), "interleaving"),
        linesCell(guardrailLines(report), "guardrails"),
      ]);
      tr.dataset.experiment = exp.name;
      body.appendChild(tr);
    }
    const empty = experiments.length === 0;
    $("experiments-empty").hidden = !empty;
    $("experiments-hint").hidden = empty;
    table.hidden = empty;
  }

  function testOf(check, name) {
    const tests = check.embeddings && check.embeddings.tests;
    return tests ? tests.find((t) => t.name === name) || null : null;
  }

  // Per watched collection: classifier AUC over the checks, its threshold as a line, the MMD
  // p-value on the right axis, and a cross on every check that alarmed.
  function renderDriftCharts(drift) {
    const charts = $("drift-charts");
    purgeCharts(charts);
    for (const name of Object.keys(drift).sort()) {
      const entry = drift[name];
      const checked = entry.checks.filter((c) => testOf(c, "classifier_auc"));
      const ref = entry.reference ? entry.reference.source + ", " + entry.reference.queries + " queries" : "no reference yet";
      const title = name + " (window " + entry.watch.window + ", every " + entry.watch.every + "; " + ref + ")";
      const div = chartCard(charts, title, "collection", name);
      const x = checked.map((c) => isoOf(c.time));
      const auc = checked.map((c) => testOf(c, "classifier_auc").statistic);
      const threshold = checked.length
        ? testOf(checked[checked.length - 1], "classifier_auc").threshold
        : entry.watch.auc_threshold;
      const mmd = checked.map((c) => {
        const t = testOf(c, "mmd");
        return t && typeof t.p_value === "number" ? t.p_value : null;
      });
      const alarms = checked.filter((c) => c.alarm);
      const edges = x.length ? [x[0], x[x.length - 1]] : [];
      const traces = [
        {
          x, y: auc, name: "classifier AUC", type: "scatter", mode: "lines+markers",
          line: { color: COLORS[0], width: 2 }, hovertemplate: "AUC %{y:.3f}<extra></extra>",
        },
        {
          x: edges, y: edges.map(() => threshold), name: "AUC threshold " + fixed(threshold), type: "scatter",
          mode: "lines", line: { color: COLORS[3], dash: "dash", width: 1.5 }, hoverinfo: "skip",
        },
        {
          x, y: mmd, name: "MMD p-value", type: "scatter", mode: "lines+markers", yaxis: "y2",
          line: { color: COLORS[2], width: 1.5, dash: "dot" }, hovertemplate: "MMD p %{y:.3f}<extra></extra>",
        },
        {
          x: alarms.map((c) => isoOf(c.time)), y: alarms.map((c) => testOf(c, "classifier_auc").statistic),
          name: "alarm", type: "scatter", mode: "markers",
          marker: { color: COLORS[3], symbol: "x", size: 12 }, hovertemplate: "alarm<extra></extra>",
        },
      ];
      const layout = {
        margin: { l: 50, r: 50, t: 10, b: 40 },
        xaxis: { type: "date" },
        yaxis: { title: { text: "classifier AUC" }, range: [0.4, 1.02] },
        yaxis2: { title: { text: "MMD p" }, overlaying: "y", side: "right", range: [0, 1.02], showgrid: false,
          tickmode: "auto" },
        legend: { orientation: "h", y: -0.25 },
        hovermode: "closest",
      };
      window.Plotly.newPlot(div, traces, layout, { displaylogo: false, responsive: true });
    }
  }

  function renderDriftTable(drift) {
    const body = $("drift-table").tBodies[0];
    clear(body);
    for (const name of Object.keys(drift).sort()) {
      const checks = drift[name].checks;
      const last = checks[checks.length - 1];
      if (!last) {
        const tr = row([el("td", name), el("td", "\u2014"), el("td", "no check yet"), el("td", "\u2014"),
          el("td", ""), el("td", ""), el("td", ""), el("td", "")]);
        tr.dataset.collection = name;
        body.appendChild(tr);
        continue;
      }
      const tests = (last.embeddings && last.embeddings.tests) || [];
      const signals = (last.signals && last.signals.tests) || [];
      const all = [...tests, ...signals];
      if (all.length === 0) all.push(null);
      for (const t of all) {
        const on = t && t.threshold_on === "p_value" ? "p < " : "> ";
        const tr = row([
          el("td", name), el("td", when(isoOf(last.time))), el("td", last.status || "\u2014"),
          el("td", t ? t.name : "\u2014"), el("td", t ? fixed(t.statistic) : "", "num"),
          el("td", t ? pValue(t.p_value) : "", "num"), el("td", t ? on + fixed(t.threshold) : "", "num"),
          t && t.alarm ? el("td", "alarm", "alarm") : el("td", t && t.warning ? "warning" : "no"),
        ]);
        tr.dataset.collection = name;
        if (t) tr.dataset.test = t.name;
        body.appendChild(tr);
      }
    }
  }

  function renderDrift(drift) {
    const empty = Object.keys(drift).length === 0;
    $("drift-empty").hidden = !empty;
    $("drift-body").hidden = empty;
    if (empty) {
      purgeCharts($("drift-charts"));
      clear($("drift-table").tBodies[0]);
      return;
    }
    renderDriftCharts(drift);
    renderDriftTable(drift);
  }

  // Per shadow: its overall summary ("all"), then each segment's.
  function renderShadow(shadow) {
    const table = $("shadow-table");
    const body = table.tBodies[0];
    clear(body);
    const names = Object.keys(shadow || {}).sort();
    for (const name of names) {
      const entry = shadow[name] || {};
      const summary = entry.summary || {};
      const order = (a, b) => a.localeCompare(b, "en", { numeric: true });
      const segments = [["all", summary], ...Object.entries(summary.segments || {}).sort(([a], [b]) => order(a, b))];
      for (const [segment, s] of segments) {
        const overall = segment === "all";
        const tr = row([
          el("td", name, "name"), el("td", segment), el("td", count(s.queries), "num"),
          el("td", overall ? count(s.dropped) : "", "num"), el("td", overall ? count(s.failed) : "", "num"),
          el("td", fixed(s.rbo), "num"), el("td", fixed(s.jaccard), "num"),
          el("td", fixed(s.top1_agreement), "num"), el("td", signed(s.score_delta), "num"),
          el("td", typeof s.latency_delta_ms === "number" ? (s.latency_delta_ms >= 0 ? "+" : "") +
            s.latency_delta_ms.toFixed(1) : "\u2014", "num"),
          el("td", overall ? count(entry.review) : "", "num"),
        ]);
        tr.dataset.shadow = name;
        tr.dataset.segment = segment;
        body.appendChild(tr);
      }
    }
    $("shadow-empty").hidden = names.length > 0;
    table.hidden = names.length === 0;
  }

  function renderOnline(data) {
    $("online-note").hidden = true;
    $("online").hidden = false; // shown first: Plotly sizes a chart by its container
    renderSeries(data.series || {});
    renderExperiments(data.experiments || []);
    renderDrift(data.drift || {});
    renderShadow(data.shadow || {});
  }

  // The online section fails on its own: a server without it (or an error in it) leaves the rest
  // of the page as it is, with a note in the section.
  function onlineUnavailable(exc) {
    renderOnline({});
    const note = $("online-note");
    note.textContent = "Online data unavailable: " + (exc instanceof ApiError ? explain(exc) : String(exc));
    note.hidden = false;
  }

  async function fetchOnline() {
    return fetchJson("/dashboard/api/online?hours=" + encodeURIComponent($("online-hours").value));
  }

  async function reloadOnline() {
    const hours = $("online-hours").value;
    try {
      const data = await fetchOnline();
      if ($("online-hours").value === hours) renderOnline(data);
    } catch (exc) {
      if (!(exc instanceof ApiError)) throw exc;
      onlineUnavailable(exc);
    }
  }

  // -- the capacity plan panel ---------------------------------------------------------------------

  function money(x) {
    return "$" + NUMBER.format(Math.round(x));
  }

  function renderPlan(data) {
    const p = data.plan;
    const body = $("plan-table").tBodies[0];
    clear(body);
    const figures = [
      ["points (at the horizon)", NUMBER.format(p.points)],
      ["nodes", p.nodes + " \u00d7 " + p.instance],
      ["shards \u00d7 replicas", p.shards + " \u00d7 " + p.replicas],
      ["what dominates", p.dominant],
      ["predicted p99", p.p99_ms.toFixed(2) + " ms" + (p.meets_slo ? " (meets the SLO)" : " (MISSES the SLO)")],
      ["monthly cost", money(p.monthly.total)],
      ["per million queries", "$" + p.cost_per_million_queries.toFixed(2)],
      ["profile", p.profile.name + " (" + p.profile.date + ")"],
      ["prices", p.catalog.name + " (as of " + p.catalog.as_of + ")"],
    ];
    for (const [label, value] of figures) body.appendChild(row([el("th", label), el("td", value)]));
    const caveats = $("plan-caveats");
    clear(caveats);
    for (const note of p.notes) caveats.appendChild(el("li", note));
    $("plan-result").hidden = false;
    const labels = ["this plan", ...data.what_ifs.map((w) => w.change)];
    const totals = [p.monthly.total, ...data.what_ifs.map((w) => w.monthly.total)];
    if (!window.Plotly) return;
    const chart = $("plan-chart");
    window.Plotly.purge(chart);
    window.Plotly.newPlot(
      chart,
      [{ type: "bar", orientation: "h", x: totals, y: labels.map(plotlyText), text: totals.map(money),
        marker: { color: labels.map((_, i) => (i === 0 ? COLORS[0] : COLORS[7])) } }],
      { title: { text: "monthly cost: this plan and its what-ifs" }, margin: { l: 170, r: 20, t: 40, b: 40 },
        xaxis: { title: { text: "USD a month" } }, yaxis: { autorange: "reversed" } },
      { displaylogo: false, responsive: true },
    );
  }

  async function submitPlan(event) {
    event.preventDefault();
    const error = $("plan-error");
    error.hidden = true;
    document.body.dataset.plan = "planning";
    try {
      const data = await fetchJson("/plan", {
        method: "POST", type: "application/yaml", body: $("plan-workload").value,
      });
      renderPlan(data);
      document.body.dataset.plan = "ready";
    } catch (exc) {
      if (!(exc instanceof ApiError)) throw exc;
      $("plan-result").hidden = true;
      error.textContent = exc.status === 422 ? "The workload was refused: " + exc.message : explain(exc);
      error.hidden = false;
      document.body.dataset.plan = "error";
    }
  }

  // -- loading -------------------------------------------------------------------------------------

  async function load() {
    $("notice").hidden = true;
    $("key-forget").hidden = !currentKey();
    document.body.dataset.state = "loading";
    try {
      // The online answer is caught apart: its failure leaves the other sections standing.
      const online = fetchOnline().then((data) => ({ data }), (exc) => ({ exc }));
      const [collections, evaluation] = await Promise.all([
        fetchJson("/dashboard/api/collections"),
        fetchJson("/dashboard/api/evaluation"),
      ]);
      renderCollections(collections);
      renderEvaluation(evaluation);
      const answer = await online;
      if (answer.exc === undefined) renderOnline(answer.data);
      else if (answer.exc instanceof ApiError) onlineUnavailable(answer.exc);
      else throw answer.exc;
      document.body.dataset.state = "ready";
    } catch (exc) {
      if (!(exc instanceof ApiError)) throw exc;
      hideData();
      showNotice(explain(exc));
      document.body.dataset.state = exc.status === 401 ? "key-needed" : "error";
    }
  }

  function start() {
    takeKeyFromAddress();
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("key-input");
      const key = input.value.trim();
      input.value = "";
      if (key) sessionStorage.setItem(KEY_STORE, key);
      load();
    });
    $("key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      load();
    });
    $("metric-select").addEventListener("change", (event) => {
      state.metric = event.target.value;
      renderCharts(state.runs, state.metric);
    });
    $("online-metric-select").addEventListener("change", (event) => {
      state.onlineMetric = event.target.value;
      renderSeriesCharts(state.series, state.onlineMetric);
    });
    $("online-hours").addEventListener("change", reloadOnline);
    $("compare-a").addEventListener("change", renderComparison);
    $("compare-b").addEventListener("change", renderComparison);
    $("plan-form").addEventListener("submit", submitPlan);
    // A `#key=` link opened on this page changes only the fragment: no reload, so take it here.
    window.addEventListener("hashchange", () => {
      if (!new URLSearchParams(window.location.hash.slice(1)).has("key")) return;
      takeKeyFromAddress();
      load();
    });
    load();
  }

  // For tests and the console: draw given data without the server.
  window.vfDashboard = { load, renderCollections, renderEvaluation, renderOnline, renderPlan };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
