// Glassbox explain page: calls the public REST API and draws what each stage says about a search.
// Plain DOM code, no libraries. All text from the API goes in through textContent, never innerHTML.
"use strict";

(function () {
  const API = "../v1";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const STAGE_NAMES = {
    dense: "dense (cosine)",
    lexical: "lexical (BM25)",
    fused: "fused",
    cosine: "cosine filter",
    imrnn: "IMRNN",
    kg: "knowledge graph",
  };
  // Breakdown fields drawn elsewhere on the card, not as table details.
  const DRAWN_ELSEWHERE = new Set(["toward", "away", "query_concepts", "document_concepts", "paths"]);

  const $ = (id) => document.getElementById(id);

  // ---------- small DOM helpers ----------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(value, digits = 3) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "number") {
      if (Number.isInteger(value)) return String(value);
      return value.toFixed(digits);
    }
    if (typeof value === "boolean") return value ? "yes" : "no";
    return String(value);
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // ---------- API ----------

  function headers(json) {
    const result = { Accept: "application/json" };
    if (json) result["Content-Type"] = "application/json";
    const key = $("api-key").value.trim();
    if (key) result["X-API-Key"] = key;
    return result;
  }

  async function request(method, path, body) {
    const response = await fetch(API + path, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let payload = null;
    try {
      payload = await response.json();
    } catch (_) {
      payload = null;
    }
    if (!response.ok) {
      const error = payload && payload.error;
      const message = error ? `${error.message} (${error.code})` : `HTTP ${response.status}`;
      const hint = response.status === 401 || response.status === 403 ? " Enter an API key above." : "";
      throw new Error(message + hint);
    }
    return payload;
  }

  function setStatus(message, kind) {
    const status = $("status");
    status.textContent = message;
    status.className = "status" + (kind ? " " + kind : "");
  }

  // ---------- collections ----------

  async function loadCollections() {
    const select = $("collection");
    const previous = select.value;
    try {
      const body = await request("GET", "/collections");
      select.replaceChildren();
      for (const info of body.collections) {
        select.append(el("option", { value: info.name, text: `${info.name} (${info.documents} documents)` }));
      }
      if (body.collections.length === 0) {
        select.append(el("option", { value: "", text: "no collections" }));
        setStatus("No collections yet: create one and add documents through the API (see README).", "warning");
      } else {
        if (previous && body.collections.some((c) => c.name === previous)) select.value = previous;
        setStatus(`${body.collections.length} collection(s) available.`);
      }
    } catch (error) {
      setStatus(`Could not list collections: ${error.message}`, "error");
    }
  }

  // ---------- text with highlighted spans ----------

  // Spans count Unicode code points (Python's str indices), so index by code point, not UTF-16 unit.
  function highlighted(text, spans) {
    const chars = Array.from(text || "");
    const fragment = document.createDocumentFragment();
    const sorted = spans
      .filter((s) => Number.isInteger(s.start) && Number.isInteger(s.end) && s.start < s.end && s.end <= chars.length)
      .sort((a, b) => a.start - b.start || b.end - a.end);
    let at = 0;
    for (const span of sorted) {
      if (span.start < at) continue; // overlaps one already marked
      if (span.start > at) fragment.append(chars.slice(at, span.start).join(""));
      fragment.append(
        el("mark", { class: span.kind || "concept", title: span.title || "" }, chars.slice(span.start, span.end).join("")),
      );
      at = span.end;
    }
    if (at < chars.length) fragment.append(chars.slice(at).join(""));
    return fragment;
  }

  // ---------- query panel ----------

  function wordChips(words, direction) {
    if (!words || words.length === 0) return el("span", { class: "muted", text: "none" });
    const list = el("ul", { class: "chips " + direction });
    for (const word of words) {
      const change = typeof word.cosine_change === "number" ? word.cosine_change : null;
      list.append(
        el("li", { class: "chip", title: change === null ? "" : `cosine change ${fmt(change, 4)}` },
          word.token, change === null ? null : el("span", { class: "change", text: ` ${change > 0 ? "+" : ""}${fmt(change, 2)}` })),
      );
    }
    return list;
  }

  function renderQuery(body) {
    const query = body.query || {};
    const panel = el("div");
    const linked = (query.kg && query.kg.linked_concepts) || [];
    const spans = linked.map((c) => ({ start: c.start, end: c.end, title: `${c.name} (${c.id}, ${c.method || "linked"})`, kind: "query-concept" }));
    panel.append(el("p", { class: "query-text" }, highlighted(query.text || "", spans)));

    const facts = el("dl", { class: "facts" });
    const fact = (name, value) => facts.append(el("dt", { text: name }), el("dd", {}, value));
    fact("pipeline", body.variant || "—");
    fact("first stage", `${query.first_stage || "—"}, ${fmt(query.candidates)} candidates`);

    const cosine = query.cosine;
    if (!cosine) {
      fact("relevance filter", el("span", { class: "muted", text: "not in this pipeline (no calibrated relevance)" }));
    } else if (cosine.calibrated === false) {
      fact("relevance filter", el("span", { class: "uncalibrated-notice" },
        "uncalibrated: no relevance and no τ, every result kept", cosine.reason ? ` (${cosine.reason})` : ""));
    } else {
      const parameters = isObject(cosine.parameters)
        ? Object.entries(cosine.parameters).map(([k, v]) => `${k}=${fmt(v, 3)}`).join(", ")
        : "";
      fact("relevance filter",
        `τ = ${fmt(cosine.threshold)}, ${cosine.family || "?"} map (${parameters}); ` +
        `${cosine.filtering ? "filtering" : "not filtering"}, kept ${fmt(cosine.kept)}, at least ${fmt(cosine.min_results)}`);
    }

    const imrnn = query.imrnn;
    if (!imrnn) {
      fact("IMRNN", el("span", { class: "muted", text: "not in this pipeline" }));
    } else if (imrnn.adapted === false) {
      fact("IMRNN", el("span", { class: "muted", text: `not adapted${imrnn.reason ? ` (${imrnn.reason})` : ""}` }));
    } else {
      fact("IMRNN", `blend λ = ${fmt(imrnn.blend, 2)}, shift ${fmt(imrnn.shift, 3)}`);
      fact("query moved toward", wordChips(imrnn.toward, "toward"));
      fact("query moved away from", wordChips(imrnn.away, "away"));
    }

    const kg = query.kg;
    if (!kg) {
      fact("knowledge graph", el("span", { class: "muted", text: "not in this pipeline" }));
    } else {
      const names = linked.map((c) => `${c.text} → ${c.name}`).join("; ") || "no concept linked in the query";
      fact("knowledge graph", `${names} (graphs: ${(kg.graphs || []).join(", ") || "—"})`);
    }

    const timings = body.timings_ms || {};
    fact("timings (ms)", Object.entries(timings).map(([k, v]) => `${k} ${fmt(v, 1)}`).join(" · ") || "—");
    panel.append(facts);
    $("query-body").replaceChildren(panel);
    $("query-panel").hidden = false;
  }

  // ---------- calibration view: histogram of this query's relevance with τ ----------

  function histogram(values, lo, hi, bins, tau, axisLabel) {
    const width = 520, height = 190, left = 36, right = 12, top = 14, bottom = 40;
    const plotW = width - left - right, plotH = height - top - bottom;
    const span = hi - lo || 1;
    const counts = new Array(bins).fill(0);
    for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor(((v - lo) / span) * bins)))] += 1;
    const most = Math.max(1, ...counts);
    const x = (v) => left + ((v - lo) / span) * plotW;
    const chart = svg("svg", {
      class: "histogram", viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `histogram of ${values.length} values of ${axisLabel}` + (tau === null ? "" : `, τ = ${fmt(tau)}`),
    });
    chart.append(svg("line", { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, class: "axis" }));
    counts.forEach((count, i) => {
      const barH = (count / most) * plotH;
      const x0 = left + (i / bins) * plotW;
      const bar = svg("rect", { x: x0 + 1, y: top + plotH - barH, width: plotW / bins - 2, height: barH, class: "bin" });
      const from = lo + (i / bins) * span, to = lo + ((i + 1) / bins) * span;
      bar.append(svg("title", {}, `${fmt(from, 2)}–${fmt(to, 2)}: ${count}`));
      chart.append(bar);
      if (count > 0) chart.append(svg("text", { x: x0 + plotW / bins / 2, y: top + plotH - barH - 3, class: "count" }, String(count)));
    });
    for (let i = 0; i <= 4; i += 1) {
      const v = lo + (i / 4) * span;
      chart.append(svg("text", { x: x(v), y: top + plotH + 14, class: "tick" }, fmt(v, 2)));
    }
    chart.append(svg("text", { x: left + plotW / 2, y: height - 6, class: "axis-label" }, axisLabel));
    if (tau !== null) {
      chart.append(svg("line", { x1: x(tau), y1: top - 4, x2: x(tau), y2: top + plotH, class: "tau" }));
      chart.append(svg("text", { x: x(tau) + 4, y: top + 6, class: "tau-label" }, `τ = ${fmt(tau, 2)}`));
    }
    return chart;
  }

  function renderCalibration(body) {
    const cosine = (body.query || {}).cosine;
    const results = body.results || [];
    const box = el("div");
    const relevances = results.map((r) => r.relevance).filter((v) => typeof v === "number");
    if (cosine && cosine.calibrated !== false && relevances.length > 0) {
      const tau = typeof cosine.threshold === "number" ? cosine.threshold : null;
      box.append(histogram(relevances, 0, 1, 10, tau, "calibrated relevance of the returned results"));
      box.append(el("p", { class: "note" },
        `The histogram counts the calibrated relevance of the ${relevances.length} results the API returned for this ` +
        "query, with τ marked. A reliability diagram needs relevance labels, which a single live query does not " +
        "have, so it is not drawn here (see docs/evaluation.md for calibration measured on labelled data). " +
        (cosine.filtering === false
          ? "The filter is off, so results on both sides of τ come back."
          : "Results below τ are dropped by the filter before the response (unless kept to reach the minimum), " +
            "so the left of τ is mostly empty; raise “Results” or turn the filter off to see more.")));
    } else {
      const scores = results.map((r) => r.score).filter((v) => typeof v === "number");
      const reason = !cosine
        ? "the pipeline has no cosine filter stage"
        : `the cosine filter is uncalibrated${cosine.reason ? ` (${cosine.reason})` : ""}`;
      box.append(el("p", { class: "uncalibrated-notice" }, `No calibrated relevance for this query: ${reason}. `,
        "Shown instead: the histogram of the final scores (not probabilities, no τ)."));
      if (scores.length > 0) {
        const lo = Math.min(...scores), hi = Math.max(...scores);
        box.append(histogram(scores, lo, hi > lo ? hi : lo + 1, 10, null, "final score of the returned results"));
      }
    }
    $("calibration-body").replaceChildren(box);
    $("calibration-panel").hidden = false;
  }

  // ---------- one result ----------

  function relevanceView(result, cosineQuery) {
    const stage = (result.breakdown || {}).cosine;
    if (typeof result.relevance !== "number") {
      const why = !cosineQuery ? "no cosine filter in this pipeline"
        : cosineQuery.calibrated === false ? "the cosine filter is uncalibrated" : "no relevance reported";
      return el("p", { class: "uncalibrated-notice" }, `Relevance: not calibrated (${why}); kept: ${fmt(result.kept)}.`);
    }
    const tau = cosineQuery && typeof cosineQuery.threshold === "number" ? cosineQuery.threshold : null;
    const above = stage && typeof stage.above_threshold === "boolean" ? stage.above_threshold
      : tau === null ? null : result.relevance >= tau;
    const kept = stage && typeof stage.kept === "boolean" ? stage.kept : result.kept;
    const filtering = !cosineQuery || cosineQuery.filtering !== false;
    let verdict;
    if (kept && above !== false) verdict = el("span", { class: "badge kept", text: "kept: above τ" });
    else if (kept && !filtering) verdict = el("span", { class: "badge below", text: "below τ: kept, the filter is off" });
    else if (kept) verdict = el("span", { class: "badge below", text: "below τ: kept only to reach the minimum" });
    else verdict = el("span", { class: "badge filtered", text: "filtered: below τ" });
    const percent = Math.max(0, Math.min(100, result.relevance * 100));
    const label = `relevance ${fmt(result.relevance)}` + (tau === null ? "" : ` against τ ${fmt(tau)}`);
    const track = el("div", { class: "relevance-bar", role: "img", "aria-label": label, title: label },
      el("div", { class: "fill" + (above === false ? " low" : ""), style: `width: ${percent}%` }));
    if (tau !== null) track.append(el("div", { class: "tau-marker", style: `left: ${tau * 100}%`, title: `τ = ${fmt(tau)}` }));
    return el("div", { class: "relevance" },
      el("span", { class: "relevance-value", text: `relevance ${fmt(result.relevance, 2)}` }), track, verdict);
  }

  function breakdownTable(breakdown) {
    const table = el("table", { class: "breakdown" },
      el("caption", { text: "Score at each stage, in pipeline order" }),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "stage" }), el("th", { scope: "col", text: "score" }),
        el("th", { scope: "col", text: "rank" }), el("th", { scope: "col", text: "details" }))));
    const rows = el("tbody");
    for (const [name, view] of Object.entries(breakdown || {})) {
      if (!isObject(view)) continue;
      const details = Object.entries(view)
        .filter(([key, value]) => key !== "score" && key !== "rank" && !DRAWN_ELSEWHERE.has(key) && !isObject(value) && !Array.isArray(value))
        .map(([key, value]) => `${key.replaceAll("_", " ")}: ${fmt(value)}`)
        .join(" · ");
      rows.append(el("tr", {},
        el("th", { scope: "row", text: STAGE_NAMES[name] || name }),
        el("td", { class: "num", text: fmt(view.score, 4) }),
        el("td", { class: "num", text: "rank" in view ? fmt(view.rank) : "" }),
        el("td", { text: details })));
    }
    table.append(rows);
    return table;
  }

  function imrnnView(imrnn) {
    if (!imrnn) return null;
    return el("div", { class: "imrnn" },
      el("h4", { text: "IMRNN: words the query modulation moved this result toward / away from" }),
      el("div", { class: "word-row" }, el("span", { class: "word-label", text: "toward" }), wordChips(imrnn.toward, "toward")),
      el("div", { class: "word-row" }, el("span", { class: "word-label", text: "away" }), wordChips(imrnn.away, "away")));
  }

  // Node names: from the concept lists first, then from the rendered path ("A —rel→ B ←rel— C"), then the id.
  function nodeNames(path, kg) {
    const names = new Map();
    for (const c of [...(kg.query_concepts || []), ...(kg.document_concepts || [])]) names.set(c.id, c.name);
    const rendered = (path.rendered || "").replace(/ \(in query and document\)$/, "");
    const parts = rendered.split(/ (?:—.+?→|←.+?—) /);
    const nodes = path.nodes || [];
    return nodes.map((id, i) => names.get(id) || (parts.length === nodes.length ? parts[i] : id));
  }

  function pathGraph(path, kg) {
    const nodes = path.nodes || [];
    const names = nodeNames(path, kg);
    const inQuery = new Set((kg.query_concepts || []).map((c) => c.id));
    const inDocument = new Set((kg.document_concepts || []).map((c) => c.id));
    const charW = 6.6, padX = 10, nodeH = 26, gap = 96, top = 26;
    const widths = names.map((n) => Math.max(40, n.length * charW + 2 * padX));
    const xs = [];
    let cursor = 8;
    for (const w of widths) { xs.push(cursor); cursor += w + gap; }
    const sharedLabel = "in query and document";
    const width = Math.max(cursor - gap + 8 + (path.shared ? sharedLabel.length * charW + 12 : 0), 120);
    const height = top + nodeH + 22;
    const graph = svg("svg", {
      class: "kg-path", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-label": path.rendered || names.join(" – "),
    });
    graph.append(svg("title", {}, path.rendered || names.join(" – ")));
    const marker = svg("marker", { id: `arrow-${Math.random().toString(36).slice(2)}`, viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }));
    const defs = svg("defs");
    defs.append(marker);
    graph.append(defs);
    (path.edges || []).forEach((edge, i) => {
      if (i + 1 >= nodes.length) return;
      const forward = edge.head === nodes[i];
      const x1 = xs[i] + widths[i], x2 = xs[i + 1], y = top + nodeH / 2;
      const line = svg("line", { x1: x1 + 2, y1: y, x2: x2 - 2, y2: y, class: "edge" });
      line.setAttribute(forward ? "marker-end" : "marker-start", `url(#${marker.id})`);
      graph.append(line, svg("text", { x: (x1 + x2) / 2, y: y - 8, class: "edge-label" }, edge.relation));
    });
    nodes.forEach((id, i) => {
      const kind = inQuery.has(id) && inDocument.has(id) ? "both" : inQuery.has(id) ? "query" : inDocument.has(id) ? "document" : "via";
      const group = svg("g", { class: `node ${kind}` });
      group.append(svg("title", {}, `${names[i]} (${id}): ${{ both: "in query and document", query: "in the query", document: "in the document", via: "on the path" }[kind]}`));
      group.append(svg("rect", { x: xs[i], y: top, width: widths[i], height: nodeH, rx: 6 }));
      group.append(svg("text", { x: xs[i] + widths[i] / 2, y: top + nodeH / 2 + 4 }, names[i]));
      graph.append(group);
    });
    if (path.shared) graph.append(svg("text", { x: xs[0] + widths[0] + 10, y: top + nodeH / 2 + 4, class: "shared-label" }, sharedLabel));
    return graph;
  }

  function kgView(kg) {
    if (!kg) return null;
    const box = el("div", { class: "kg" }, el("h4", { text: "Knowledge-graph paths" }));
    const paths = kg.paths || [];
    if (!kg.explained) {
      box.append(el("p", { class: "muted", text: "Not explained: the KG stage explains only the best candidates of a query." }));
      return box;
    }
    if (paths.length === 0) {
      box.append(el("p", { class: "muted", text: "No path found between the query's concepts and this document's." }));
      return box;
    }
    const list = el("ul", { class: "paths" });
    for (const path of paths) {
      list.append(el("li", {}, pathGraph(path, kg),
        el("span", { class: "path-caption" }, path.rendered || "", el("span", { class: "muted", text: ` · score ${fmt(path.score, 3)}` }))));
    }
    box.append(list);
    box.append(el("p", { class: "legend" },
      el("span", { class: "swatch query" }), "query concept ",
      el("span", { class: "swatch document" }), "document concept ",
      el("span", { class: "swatch both" }), "in both ",
      el("span", { class: "swatch via" }), "on the path"));
    return box;
  }

  function renderResult(result, index, query) {
    const breakdown = result.breakdown || {};
    const kg = breakdown.kg;
    const concepts = (kg && kg.document_concepts) || [];
    const spansIn = (field) => concepts.filter((c) => c.field === field)
      .map((c) => ({ start: c.start, end: c.end, title: `${c.name} (${c.id})`, kind: "concept" }));
    const card = el("li", { class: "result", "data-id": result.id });
    card.append(el("h3", {},
      el("span", { class: "rank", text: `${index + 1}.` }), " ",
      highlighted(result.title || result.id, spansIn("title")),
      el("span", { class: "doc-id", text: ` ${result.id}` })));
    card.append(el("p", { class: "score-line" }, `final score ${fmt(result.score, 4)}`));
    card.append(relevanceView(result, query.cosine));
    card.append(el("p", { class: "doc-text" }, highlighted(result.text || "", spansIn("text"))));
    const details = el("div", { class: "explain" }, breakdownTable(breakdown));
    const imrnn = imrnnView(breakdown.imrnn);
    if (imrnn) details.append(imrnn);
    const graph = kgView(kg);
    if (graph) details.append(graph);
    const absent = ["cosine", "imrnn", "kg"].filter((stage) => !(stage in breakdown));
    if (absent.length > 0) {
      details.append(el("p", { class: "muted absent", text: `Stages not in this pipeline: ${absent.map((s) => STAGE_NAMES[s]).join(", ")}.` }));
    }
    card.append(details);
    return card;
  }

  // ---------- search ----------

  async function search(event) {
    event.preventDefault();
    const collection = $("collection").value;
    const query = $("query").value.trim();
    const topK = Number.parseInt($("top-k").value, 10) || 10;
    if (!collection) { setStatus("Choose a collection first.", "error"); return; }
    if (!query) { setStatus("Type a query first.", "error"); $("query").focus(); return; }
    const button = $("search-button");
    button.disabled = true;
    setStatus("Searching…");
    try {
      const body = await request("POST", `/collections/${encodeURIComponent(collection)}/search`, { query, top_k: topK });
      renderQuery(body);
      renderCalibration(body);
      const list = $("results");
      list.replaceChildren(...body.results.map((r, i) => renderResult(r, i, body.query || {})));
      $("results-panel").hidden = false;
      const total = body.timings_ms && body.timings_ms.total;
      setStatus(`${body.results.length} result(s) in ${fmt(total, 1)} ms.`, "done");
    } catch (error) {
      setStatus(`Search failed: ${error.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("search-form").addEventListener("submit", search);
    $("reload-collections").addEventListener("click", loadCollections);
    loadCollections();
  });
})();
