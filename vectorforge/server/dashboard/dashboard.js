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
  const state = { runs: [], metric: null };

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

  async function fetchJson(path) {
    const headers = { Accept: "application/json" };
    const key = currentKey();
    if (key) headers.Authorization = "Bearer " + key;
    let response;
    try {
      response = await fetch(path, { headers, cache: "no-store", credentials: "omit" });
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
    for (const id of ["collections", "evaluation"]) $(id).hidden = true;
    clear($("collections-table").tBodies[0]);
    clear($("evaluation-charts"));
    state.runs = [];
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

  // -- loading -------------------------------------------------------------------------------------

  async function load() {
    $("notice").hidden = true;
    $("key-forget").hidden = !currentKey();
    document.body.dataset.state = "loading";
    try {
      const [collections, evaluation] = await Promise.all([
        fetchJson("/dashboard/api/collections"),
        fetchJson("/dashboard/api/evaluation"),
      ]);
      renderCollections(collections);
      renderEvaluation(evaluation);
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
    $("compare-a").addEventListener("change", renderComparison);
    $("compare-b").addEventListener("change", renderComparison);
    // A `#key=` link opened on this page changes only the fragment: no reload, so take it here.
    window.addEventListener("hashchange", () => {
      if (!new URLSearchParams(window.location.hash.slice(1)).has("key")) return;
      takeKeyFromAddress();
      load();
    });
    load();
  }

  // For tests and the console: draw given data without the server.
  window.vfDashboard = { load, renderCollections, renderEvaluation };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
