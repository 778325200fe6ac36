// kgr graph view: search entities, expand neighbourhoods, ask questions and draw the answers'
// evidence paths. Plain JS over the JSON API; the graph is cytoscape.js (vendored, no CDN).
// Everything the API returns is put in the page with textContent, never as HTML.
"use strict";

(function () {
  const KEY_STORAGE = "kgr.apiKey";
  const NEIGHBOR_LIMIT = 25;
  // a type's colour: the same type gets the same colour in every session (hash of its name)
  const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#8cd17d", "#499894", "#d37295"];
  const UNTYPED = "#9aa0a6";
  // the API's base: /ui sits at the API's root, so "v1/…" resolves under any proxy prefix
  const base = new URL(".", window.location.href);
  const $ = (id) => document.getElementById(id);

  const state = { expanded: new Set(), answers: [], typeLookups: new Map() };

  function typeColor(type) {
    if (!type) return UNTYPED;
    let h = 0;
    for (const c of type) h = (h * 31 + c.codePointAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }

  const cy = cytoscape({
    container: $("graph"),
    wheelSensitivity: 0.3,
    // a fit to a two-node evidence path would otherwise fill the screen with two nodes
    maxZoom: 2,
    minZoom: 0.1,
    style: [
      { selector: "node", style: {
        "background-color": "data(color)", "label": "data(label)", "font-size": 11,
        "text-valign": "bottom", "text-margin-y": 3, "color": "#202124",
        "text-background-color": "#ffffff", "text-background-opacity": 0.8,
        "text-background-padding": 1, "width": 26, "height": 26,
        "border-width": 1, "border-color": "#ffffff" } },
      { selector: "node.topic", style: { "border-width": 4, "border-color": "#202124" } },
      { selector: "node.answer", style: { "shape": "round-rectangle", "width": 32, "height": 32,
        "border-width": 3, "border-color": "#1a73e8" } },
      { selector: "node:selected", style: { "overlay-color": "#1a73e8", "overlay-opacity": 0.2 } },
      { selector: "edge", style: {
        "width": 2, "line-color": "#9aa0a6", "target-arrow-color": "#9aa0a6",
        "target-arrow-shape": "triangle", "curve-style": "bezier", "label": "data(label)",
        "font-size": 9, "color": "#5f6368", "text-rotation": "autorotate",
        "text-background-color": "#ffffff", "text-background-opacity": 0.8 } },
      { selector: "edge.predicted", style: {
        "line-style": "dashed", "line-dash-pattern": [6, 4], "line-color": "#e37400",
        "target-arrow-color": "#e37400", "color": "#e37400" } },
      { selector: ".dimmed", style: { "opacity": 0.15 } },
      { selector: "edge.highlight", style: { "width": 4, "line-color": "#1a73e8",
        "target-arrow-color": "#1a73e8", "color": "#1a73e8" } },
      { selector: "edge.highlight.predicted", style: { "line-color": "#e37400",
        "target-arrow-color": "#e37400" } },
      { selector: "node.highlight", style: { "border-width": 4, "border-color": "#1a73e8" } },
    ],
  });
  // the test (and a curious user's console) reads the graph here
  window.kgrGraph = cy;

  // ---------------------------------------------------------------- API calls
  function apiKey() { return sessionStorage.getItem(KEY_STORAGE) || ""; }

  function status(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.className = isError ? "error" : "";
  }

  async function api(method, path, body) {
    const key = apiKey();
    if (!key) throw new Error("enter an API key first");
    const response = await fetch(new URL(path, base), {
      method,
      headers: Object.assign({ "X-API-Key": key, "Accept": "application/json" },
        body ? { "Content-Type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = data && data.error;
      const message = error ? `${error.code}: ${error.message}` : `HTTP ${response.status}`;
      throw Object.assign(new Error(message), { status: response.status });
    }
    return data;
  }

  // a uid as one path segment (the API's own client keeps ':' and friends readable)
  function segment(uid) { return encodeURIComponent(uid).replace(/%3A/gi, ":"); }

  async function run(label, work) {
    status(label + "…");
    try {
      await work();
      status("");
    } catch (err) {
      status(`${label} failed: ${err.message}`, true);
    }
  }

  // ---------------------------------------------------------------- graph building
  function addNode(uid, name, type, classes) {
    let node = cy.getElementById(uid);
    if (node.empty()) {
      node = cy.add({ group: "nodes", data: { id: uid, label: name || uid, type: type || "",
        color: typeColor(type) } });
    } else if (type && !node.data("type")) {
      node.data({ type, color: typeColor(type) });
    }
    if (classes) node.addClass(classes);
    return node;
  }

  function addEdge(source, type, target, predicted, probability) {
    const id = `${source}|${type}|${target}`;
    let edge = cy.getElementById(id);
    if (edge.empty()) {
      edge = cy.add({ group: "edges", data: { id, source, target, type, predicted: !!predicted,
        probability: probability == null ? null : probability,
        label: predicted && probability != null
          ? `${type} (${Math.round(100 * probability)}%)` : type } });
    }
    if (predicted) edge.addClass("predicted");
    return edge;
  }

  // cose from the current positions (an expansion keeps the picture) or from scratch
  function layout(randomize) {
    const l = cy.layout({ name: "cose", animate: false, randomize: !!randomize,
      nodeDimensionsIncludeLabels: true, nodeRepulsion: 400000, idealEdgeLength: 80,
      padding: 30 });
    l.run();
    cy.fit(undefined, 30);
    updateLegend();
  }

  function updateLegend() {
    const legend = $("legend");
    legend.replaceChildren();
    const types = [...new Set(cy.nodes().map((n) => n.data("type")))].sort();
    for (const type of types) {
      const item = document.createElement("span");
      const dot = document.createElement("i");
      dot.style.background = typeColor(type);
      item.append(dot, document.createTextNode(type || "(type unknown)"));
      legend.append(item);
    }
  }

  // evidence only names the entities: their types (for the colours) are looked up once each
  async function fillTypes() {
    const missing = cy.nodes().filter((n) => !n.data("type") && !state.typeLookups.has(n.id()));
    await Promise.all(missing.map(async (n) => {
      state.typeLookups.set(n.id(), true);
      try {
        const entity = await api("GET", `v1/entities/${segment(n.id())}`);
        const type = (entity.types || [])[0] || "";
        if (type) n.data({ type, color: typeColor(type) });
      } catch (err) { /* a node without a type keeps the grey of "unknown" */ }
    }));
    updateLegend();
  }

  async function expand(uid) {
    const neighbors = await api("GET",
      `v1/entities/${segment(uid)}/neighbors?limit=${NEIGHBOR_LIMIT}`);
    state.expanded.add(uid);
    const centre = cy.getElementById(uid).position();
    cy.batch(() => {
      for (const n of neighbors) {
        const e = n.entity;
        const isNew = cy.getElementById(e.uid).empty();
        const node = addNode(e.uid, e.name, (e.types || [])[0]);
        // new neighbours start around the expanded node, not all at the origin
        if (isNew) node.position({ x: centre.x + 80 * (Math.random() - 0.5),
          y: centre.y + 80 * (Math.random() - 0.5) });
        const r = n.relation;
        addEdge(r.source, r.type, r.target, false);
      }
    });
    layout();
    cy.getElementById(uid).select();
    return neighbors.length;
  }

  // ---------------------------------------------------------------- details panel
  function showDetails(node) {
    const details = $("details");
    details.replaceChildren();
    if (!node) { details.textContent = "Nothing selected."; return; }
    const rows = [["name", node.data("label")], ["uid", node.id()],
      ["type", node.data("type") || "?"],
      ["neighbours", state.expanded.has(node.id()) ? "expanded" : "click to expand"]];
    const dl = document.createElement("dl");
    for (const [k, v] of rows) {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v;
      dl.append(dt, dd);
    }
    details.append(dl);
  }

  cy.on("tap", "node", (event) => {
    const node = event.target;
    showDetails(node);
    if (!state.expanded.has(node.id())) {
      run("Expanding", async () => { await expand(node.id()); showDetails(node); });
    }
  });
  cy.on("tap", (event) => { if (event.target === cy) { showDetails(null); clearHighlight(); } });

  // ---------------------------------------------------------------- search
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("search-q").value.trim();
    const params = new URLSearchParams({ q, limit: "20" });
    if ($("domain").value) params.set("domain", $("domain").value);
    run("Searching", async () => {
      const page = await api("GET", `v1/entities?${params}`);
      const list = $("search-results");
      list.replaceChildren();
      if (!page.items.length) {
        const li = document.createElement("li"); li.className = "note";
        li.textContent = "No entity found."; list.append(li);
      }
      for (const hit of page.items) {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "item";
        button.dataset.uid = hit.uid;
        const type = (hit.types || [])[0] || "";
        const dot = document.createElement("i"); dot.style.background = typeColor(type);
        const name = document.createElement("b"); name.textContent = hit.name;
        const small = document.createElement("small"); small.textContent = `${type} · ${hit.uid}`;
        button.append(dot, name, small);
        button.addEventListener("click", () => run("Opening", async () => {
          addNode(hit.uid, hit.name, type);
          await expand(hit.uid);
          showDetails(cy.getElementById(hit.uid));
        }));
        li.append(button);
        list.append(li);
      }
    });
  });

  // ---------------------------------------------------------------- ask
  function evidenceElements(answer) {
    let elements = cy.getElementById(answer.uid);
    for (const path of answer.evidence) {
      for (const hop of path.relations) {
        elements = elements.union(cy.getElementById(`${hop.source}|${hop.type}|${hop.target}`))
          .union(cy.getElementById(hop.source)).union(cy.getElementById(hop.target));
      }
    }
    return elements;
  }

  function clearHighlight() {
    cy.elements().removeClass("dimmed highlight");
    for (const li of $("answers").children) li.classList.remove("active");
  }

  function highlight(index) {
    clearHighlight();
    const answer = state.answers[index];
    if (!answer) return;
    const evidence = evidenceElements(answer);
    cy.elements().not(evidence).addClass("dimmed");
    evidence.addClass("highlight");
    $("answers").children[index].classList.add("active");
    // bring the evidence into view only if part of it is off screen (the rest stays in view)
    const box = evidence.boundingBox();
    const view = cy.extent();
    if (box.x1 < view.x1 || box.y1 < view.y1 || box.x2 > view.x2 || box.y2 > view.y2) {
      cy.animate({ fit: { eles: evidence, padding: 40 } }, { duration: 250 });
    }
  }
  // the test highlights an answer the way a click does
  window.kgrHighlight = highlight;

  function drawAnswers(response) {
    cy.elements().remove();
    state.expanded.clear();
    showDetails(null);
    state.answers = response.answers;
    const topics = new Set((response.linked_entities || [])
      .map((l) => l.candidates[0]).filter(Boolean).map((c) => c.uid));
    for (const linked of response.linked_entities || []) {
      const best = linked.candidates[0];
      if (best) addNode(best.uid, best.name, best.type, "topic");
    }
    cy.batch(() => {
      for (const answer of response.answers) {
        for (const path of answer.evidence) {
          for (const hop of path.relations) {
            addNode(hop.source, hop.source_name, null, topics.has(hop.source) ? "topic" : null);
            addNode(hop.target, hop.target_name, null, topics.has(hop.target) ? "topic" : null);
            addEdge(hop.source, hop.type, hop.target, hop.predicted, hop.probability);
          }
        }
        addNode(answer.uid, answer.name, answer.type, "answer");
      }
    });
    layout(true);
  }

  function renderAnswers(response) {
    const list = $("answers");
    list.replaceChildren();
    $("ask-reason").textContent = response.answers.length ? "" : (response.reason || "No answer.");
    response.answers.forEach((answer, index) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "item";
      const dot = document.createElement("i"); dot.style.background = typeColor(answer.type);
      const name = document.createElement("b"); name.textContent = answer.name;
      const score = document.createElement("small");
      score.textContent = `${answer.type} · ${(100 * answer.score).toFixed(1)}% · ` +
        answer.relation_path.join(" → ");
      button.append(dot, name, score);
      for (const path of answer.evidence.slice(0, 3)) {
        const text = document.createElement("span");
        text.className = "evidence";
        const predicted = path.relations.some((h) => h.predicted);
        text.textContent = (predicted ? "⚠ predicted: " : "") + path.text;
        button.append(text);
      }
      button.addEventListener("click", () => highlight(index));
      li.append(button);
      list.append(li);
    });
  }

  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { question: $("question").value.trim(),
      top_k: Number($("top-k").value) || 5, predicted_links: $("predicted-links").checked };
    if ($("domain").value) body.domain = $("domain").value;
    run("Asking", async () => {
      const response = await api("POST", "v1/ask", body);
      drawAnswers(response);
      renderAnswers(response);
      await fillTypes();
    });
  });

  // ---------------------------------------------------------------- key, domains, toolbar
  async function loadDomains() {
    const schema = await api("GET", "v1/schema");
    const select = $("domain");
    const chosen = select.value;
    select.replaceChildren(new Option("(all domains)", ""));
    for (const d of schema.domains) {
      select.append(new Option(`${d.domain} (${d.node_count} nodes)`, d.domain));
    }
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  }

  function showKey() {
    const has = !!apiKey();
    $("forget-key").hidden = !has;
    $("api-key").placeholder = has ? "key saved for this tab" : "kgr_…";
    $("api-key").required = !has;
    return has;
  }

  function keyChanged() {
    if (!showKey()) return;
    run("Checking the key", async () => {
      try {
        await loadDomains();
      } catch (err) {
        // a refused key is not kept for the next calls
        if (err.status === 401) { sessionStorage.removeItem(KEY_STORAGE); showKey(); }
        throw err;
      }
    });
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    $("api-key").value = "";
    keyChanged();
  });
  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    keyChanged();
  });
  $("fit").addEventListener("click", () => cy.fit(undefined, 30));
  $("clear").addEventListener("click", () => {
    cy.elements().remove(); state.expanded.clear(); state.answers = [];
    $("answers").replaceChildren(); showDetails(null); updateLegend();
  });

  keyChanged();
})();
