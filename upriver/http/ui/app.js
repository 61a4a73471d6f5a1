// Upriver's web UI: lineage explorer, impact view, health page. No dependencies, no network beyond this
// server's /api/v1; served from the Python package (upriver/ui). docs/ui.md.
"use strict";

const KINDS = {
  dataset: ["DS", "#3b82f6"], feature: ["FT", "#0ea5e9"], feature_view: ["FV", "#06b6d4"],
  embedding: ["EMB", "#8b5cf6"], vector_index: ["IDX", "#a855f7"], document: ["DOC", "#64748b"],
  chunk: ["CH", "#94a3b8"], prompt: ["PR", "#ec4899"], model: ["MOD", "#f59e0b"],
  evaluation: ["EV", "#84cc16"], deployment: ["DEP", "#ef4444"], endpoint: ["EP", "#dc2626"],
  prediction: ["PRED", "#14b8a6"], report: ["REP", "#78716c"], dashboard: ["DASH", "#78716c"],
  job: ["JOB", "#0f766e"],
};
const HUB = 20;             // children shown per node before "N more"
const COL_W = 260, ROW_H = 40, NODE_W = 220, NODE_H = 32, PAD = 30;

const state = { tab: "explorer", node: "", depth: 2, asOf: "", viaJobs: false, expanded: new Set(), selected: "", graph: null };
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const kindOf = (id) => id.split(":", 1)[0];
// A node id as schemas/identity.py builds it: kind:namespace/name[#field], '%', '#' escaped in both and
// '/' in the name, so the last '/' before the first '#' ends the namespace.
const unescape = (t) => t.replace(/%(25|23|2F)/g, (_, h) => ({ 25: "%", 23: "#", "2F": "/" })[h]);
function parseId(id) {
  const kind = id.slice(0, id.indexOf(":"));
  const rest = id.slice(kind.length + 1);
  const hash = rest.indexOf("#");
  const node = hash < 0 ? rest : rest.slice(0, hash);
  const cut = node.lastIndexOf("/");
  return { kind, namespace: unescape(node.slice(0, cut)), name: unescape(node.slice(cut + 1)), field: hash < 0 ? null : rest.slice(hash + 1) };
}
// Labels that tell the visible nodes apart: the name's last segment, more segments while two visible nodes
// would read the same, then the namespace; the full id is the hover title.
function labels(ids) {
  const parts = new Map(ids.map((id) => { const r = parseId(id); return [id, { r, segs: r.name.split(/[./]/).filter(Boolean) }]; }));
  const out = new Map();
  for (let n = 1; n <= 8; n++) {
    const seen = new Map();
    for (const [id, { r, segs }] of parts) {
      const text = (segs.slice(-n).join(".") || r.name) + (r.field != null ? `.${r.field}` : "");
      out.set(id, text);
      seen.set(text, (seen.get(text) || 0) + 1);
    }
    if ([...seen.values()].every((c) => c === 1)) return out;
  }
  const count = new Map();
  for (const t of out.values()) count.set(t, (count.get(t) || 0) + 1);
  for (const [id, t] of out) if (count.get(t) > 1) out.set(id, `${t} @ ${parts.get(id).r.namespace}`);
  return out;
}
const clip = (t, n) => (t.length > n ? "…" + t.slice(t.length - n + 1) : t);
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z" : "–");
const ago = (ms) => { if (!ms) return "never"; const s = (Date.now() - ms) / 1000; return s < 120 ? `${s | 0}s ago` : s < 7200 ? `${(s / 60) | 0}m ago` : s < 172800 ? `${(s / 3600) | 0}h ago` : `${(s / 86400) | 0}d ago`; };

function token() { return sessionStorage.getItem("upriver.token") || ""; }

async function api(path, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  const resp = await fetch(`${path}?${q}`, { headers });
  if (resp.status === 401) {
    const t = window.prompt("This server needs an API token:");
    if (t) { sessionStorage.setItem("upriver.token", t); return api(path, params); }
  }
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

function status(text, error = false) { const s = $("status"); s.textContent = text; s.className = error ? "error" : ""; }
function asOfParam() { return state.asOf ? new Date(state.asOf + "Z").getTime() : ""; }

// ---- routing ----------------------------------------------------------------------------------------
function readHash() {
  const [path, query] = location.hash.slice(1).split("?");
  const p = new URLSearchParams(query || "");
  state.tab = (path || "/explorer").slice(1) || "explorer";
  if (p.get("node")) state.node = p.get("node");
  if (p.get("depth")) state.depth = +p.get("depth");
  state.asOf = p.get("as_of") || "";
  state.viaJobs = p.get("via_jobs") === "true";
}
function go(tab, extra = {}) {
  const p = new URLSearchParams({ node: state.node, depth: state.depth, ...(state.asOf ? { as_of: state.asOf } : {}),
    ...(state.viaJobs ? { via_jobs: "true" } : {}), ...extra });
  if (!state.node) p.delete("node");
  location.hash = `#/${tab}?${p}`;
}
window.addEventListener("hashchange", () => { readHash(); show(); });

async function show() {
  for (const t of ["explorer", "impact", "health"]) $(t).hidden = t !== state.tab;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === state.tab));
  $("depth").value = String(state.depth);
  $("asof").value = state.asOf;
  $("viajobs").checked = state.viaJobs;
  try {
    if (state.tab === "explorer") await showExplorer();
    else if (state.tab === "impact") await showImpact();
    else await showHealth();
  } catch (e) { status(e.message, true); }
}

// ---- search -----------------------------------------------------------------------------------------
let searchTimer = 0;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const q = $("search").value.trim();
    const ul = $("results");
    if (q.length < 2) { ul.hidden = true; return; }
    const { nodes } = await api("/api/v1/search", { q, limit: 20 });
    ul.innerHTML = nodes.map((n) => { const r = parseId(n); return `<li data-node="${esc(n)}" title="${esc(n)}"><b>${esc(r.name)}</b> <small>${esc(r.kind)} · ${esc(r.namespace)}</small></li>`; }).join("") || "<li>no match</li>";
    ul.hidden = false;
  }, 150);
});
$("results").addEventListener("click", (e) => {
  const li = e.target.closest("li[data-node]");
  if (!li) return;
  $("results").hidden = true;
  $("search").value = "";
  state.node = li.dataset.node; state.expanded.clear(); state.selected = state.node;
  go(state.tab === "health" ? "explorer" : state.tab);
});
$("depth").addEventListener("change", () => { state.depth = +$("depth").value; go(state.tab); });
$("asof").addEventListener("change", () => { state.asOf = $("asof").value; go(state.tab); });
$("now").addEventListener("click", () => { state.asOf = ""; go(state.tab); });
$("viajobs").addEventListener("change", () => { state.viaJobs = $("viajobs").checked; go(state.tab); });

// ---- explorer ---------------------------------------------------------------------------------------
async function showExplorer() {
  if (!state.node) { $("hint").hidden = false; return; }
  $("hint").hidden = true;
  const t0 = performance.now();
  const params = { node: state.node, depth: state.depth, as_of: asOfParam(), via_jobs: state.viaJobs ? "true" : "" };
  const [up, down] = await Promise.all([api("/api/v1/upstream", params), api("/api/v1/downstream", params)]);
  state.graph = { up, down };
  const drawn = draw(up, down);
  const ms = performance.now() - t0;
  window.upriverLastRender = { ms, nodes: drawn, total: new Set([...up.nodes, ...down.nodes].map((n) => n.id)).size };
  status(`${state.node} · ${window.upriverLastRender.total} nodes (${drawn} shown) · rendered in ${ms.toFixed(0)} ms` +
         (state.asOf ? ` · as of ${state.asOf}Z` : "") + (up.truncated || down.truncated ? " · truncated at depth" : ""));
  if (state.selected) await showDetails(state.selected);
}

function columns(graph, sign) {
  // BFS levels with hub collapsing: a node shows at most HUB children unless expanded
  const children = new Map();
  for (const e of graph.edges) {
    const [a, b] = sign > 0 ? [e.src, e.dst] : [e.dst, e.src];
    if (!children.has(a)) children.set(a, new Set());
    children.get(a).add(b);
  }
  const level = new Map(graph.nodes.map((n) => [n.id, n.level]));
  const shown = new Set([graph.root]);
  const more = [];
  const links = [];
  let frontier = [graph.root];
  for (let l = 1; frontier.length; l++) {
    const next = [];
    for (const n of frontier) {
      const kids = [...(children.get(n) || [])].filter((k) => level.get(k) === l).sort();
      const limit = state.expanded.has(`${sign}|${n}`) ? kids.length : HUB;
      kids.forEach((k, i) => {
        if (i < limit) { links.push([n, k]); if (!shown.has(k)) { shown.add(k); next.push(k); } }
      });
      // the key is also how state.expanded names the hub
      if (kids.length > limit) more.push({ key: `${sign}|${n}`, parent: n, count: kids.length - limit, level: l });
    }
    frontier = next;
  }
  const byLevel = new Map();
  for (const n of shown) { const l = level.get(n) || 0; if (l) (byLevel.get(l) || byLevel.set(l, []).get(l)).push(n); }
  return { byLevel, more, links };
}

function draw(up, down) {
  const t0 = performance.now();
  const svg = $("graph");
  const U = columns(up, -1), D = columns(down, 1);
  const pos = new Map();      // node id -> [x, y]
  const morePos = new Map();  // hub key -> [x, y] of its "+ N more" node
  const maxUp = Math.max(0, ...U.byLevel.keys());
  const maxDown = Math.max(0, ...D.byLevel.keys());
  const place = (l, ids, moreHere) => {
    const x = PAD + (l + maxUp) * COL_W;
    ids.sort((a, b) => kindOf(a).localeCompare(kindOf(b)) || a.localeCompare(b));
    ids.forEach((id, i) => pos.set(id, [x, PAD + i * ROW_H]));
    moreHere.forEach((m, j) => morePos.set(m.key, [x, PAD + (ids.length + j) * ROW_H]));
    return ids.length + moreHere.length;
  };
  let rows = 1;
  pos.set(state.node, [PAD + maxUp * COL_W, PAD]);
  for (const [side, sign] of [[U, -1], [D, 1]]) {
    for (const [l, ids] of side.byLevel) rows = Math.max(rows, place(sign * l, ids, side.more.filter((m) => m.level === l)));
  }
  const width = PAD * 2 + (maxUp + maxDown) * COL_W + NODE_W, height = PAD * 2 + rows * ROW_H;
  const parts = [];
  const edge = ([x1, y1], [x2, y2]) => {
    const [sx, tx] = x1 < x2 ? [x1 + NODE_W, x2] : [x1, x2 + NODE_W];
    const mx = (sx + tx) / 2;
    parts.push(`<path class="edge" d="M${sx},${y1 + NODE_H / 2} C${mx},${y1 + NODE_H / 2} ${mx},${y2 + NODE_H / 2} ${tx},${y2 + NODE_H / 2}"/>`);
  };
  for (const [a, b] of [...U.links, ...D.links]) edge(pos.get(a), pos.get(b));
  for (const m of [...U.more, ...D.more]) {
    const [x, y] = morePos.get(m.key);
    edge(pos.get(m.parent), [x, y]);
    parts.push(`<g class="node more" data-more="${esc(m.key)}" transform="translate(${x},${y})"><rect width="${NODE_W}" height="${NODE_H}"/><text x="10" y="15">+ ${m.count} more</text></g>`);
  }
  const names = labels([...pos.keys()]);
  for (const [id, [x, y]] of pos) {
    const [badge, color] = KINDS[kindOf(id)] || [kindOf(id).slice(0, 4).toUpperCase(), "#475569"];
    const job = kindOf(id) === "job";
    const cls = `node${job ? " job" : ""}${id === state.node ? " root" : ""}${id === state.selected ? " selected" : ""}`;
    const tx = 14 + badge.length * 7.5;
    parts.push(`<g class="${cls}" data-node="${esc(id)}" data-kind="${esc(kindOf(id))}" data-label="${esc(names.get(id))}" transform="translate(${x},${y})">` +
      (job ? `<rect width="${NODE_W}" height="${NODE_H}" rx="${NODE_H / 2}" fill="${color}33" stroke="${color}"/>`
           : `<rect width="${NODE_W}" height="${NODE_H}" fill="${color}22" stroke="${color}"/>`) +
      `<text class="badge" x="6" y="14" fill="${color}">${esc(badge)}</text>` +
      `<text x="${tx}" y="14">${esc(clip(names.get(id), 28))}</text>` +
      `<text class="ns" x="${tx}" y="27">${esc(clip(parseId(id).namespace, 34))}</text><title>${esc(id)}</title></g>`);
  }
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  svg.innerHTML = parts.join("");
  window.upriverLastDraw = { ms: performance.now() - t0, nodes: pos.size };
  return pos.size;
}

$("graph").addEventListener("click", async (e) => {
  const more = e.target.closest("g[data-more]");
  if (more) { state.expanded.add(more.dataset.more); draw(state.graph.up, state.graph.down); return; }
  const g = e.target.closest("g[data-node]");
  if (!g) return;
  state.selected = g.dataset.node;
  document.querySelectorAll("g.node.selected").forEach((n) => n.classList.remove("selected"));
  g.classList.add("selected");
  await showDetails(state.selected);
});
$("graph").addEventListener("dblclick", (e) => {
  const g = e.target.closest("g[data-node]");
  if (g) { state.node = g.dataset.node; state.expanded.clear(); go("explorer"); }
});

async function showDetails(id) {
  const aside = $("details");
  aside.hidden = false;
  try {
    const [node, alerts] = await Promise.all([api("/api/v1/node", { node: id }), api("/api/v1/alerts", { open: "true", subject: id })]);
    const stale = alerts.alerts.filter((a) => a.category === "stale");
    const f = node.facets || {};
    const doc = f.documentation && f.documentation.description;
    const checks = (f.dataQualityAssertions && f.dataQualityAssertions.assertions) || [];
    const schema = (f.schema && f.schema.fields) || [];
    const ref = parseId(id);
    aside.innerHTML = `<h2 title="${esc(id)}">${esc(ref.name)}</h2><p class="ns">${esc(ref.kind)} · ${esc(ref.namespace)}</p>
      ${doc ? `<p class="doc">${esc(doc)}</p>` : ""}
      <button type="button" data-root="${esc(id)}">Explore from here</button>
      <button type="button" data-impact="${esc(id)}">Impact</button>
      <dl>
        <dt>kind</dt><dd>${esc(node.kind)}</dd>
        <dt>owner</dt><dd>${esc(node.owner || "–")}</dd>
        <dt>tags</dt><dd>${node.tags.map((t) => `<span class="pill">${esc(t)}</span>`).join("") || "–"}</dd>
        <dt>freshness</dt><dd>written ${esc(ago(node.last_written))}${stale.length ? ` · <span class="pill sev-warning">${esc(stale[0].kind)} since ${esc(when(stale[0].opened_at))}</span>` : ""}</dd>
        <dt>latest version</dt><dd>${esc(node.latest_version || "–")}</dd>
        <dt>producing run</dt><dd>${esc(node.producing_job || "–")}<br><small>${esc(node.producing_run || "")}</small></dd>
        <dt>first seen</dt><dd>${esc(when(node.first_seen))}</dd>
        <dt>retired</dt><dd>${node.retired ? esc(when(node.retired_at)) : "no"}</dd>
        ${(node.aliases || []).length ? `<dt>also named</dt><dd>${node.aliases.map((a) => `<small>${esc(a.namespace)} ${esc(a.name)}</small>`).join("<br>")}</dd>` : ""}
      </dl>
      ${checks.length ? `<h3>Quality checks (${checks.filter((c) => !c.success).length} failing)</h3>` + checks.map((c) => `<p><span class="pill ${c.success ? "" : "sev-critical"}">${c.success ? "pass" : "FAIL"}</span> ${esc(c.assertion)}${c.column ? ` on ${esc(c.column)}` : ""}</p>`).join("") : ""}
      ${schema.length ? `<h3>Schema (${schema.length})</h3><table>${schema.map((c) => `<tr><td>${esc(c.name)}</td><td>${esc(c.type || "")}</td><td>${esc(c.description || "")}</td></tr>`).join("")}</table>` : ""}
      <h3>Open alerts (${alerts.alerts.length})</h3>
      ${alerts.alerts.map((a) => `<p><span class="pill sev-${esc(a.severity)}">${esc(a.kind)}</span> ${esc(a.reason)}</p>`).join("") || "<p>none</p>"}
      <h3>Versions (${node.versions.length})</h3>
      <table><tr><th>version</th><th>status</th><th>started</th></tr>
      ${(node.versions || []).slice(-15).reverse().map((v) => `<tr title="${esc(v.job)} · ${esc(v.run_id)}"><td>${esc(v.version || "–")}</td><td>${esc(v.status)}${v.produced ? "" : " (attempt)"}</td><td>${esc(when(v.started_at))}</td></tr>` +
        (v.error ? `<tr class="error"><td colspan="3">${esc(v.error)}</td></tr>` : "")).join("")}</table>`;
  } catch (e) { aside.innerHTML = `<p class="error">${esc(e.message)}</p>`; }
}
$("details").addEventListener("click", (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  state.node = b.dataset.root || b.dataset.impact; state.expanded.clear();
  go(b.dataset.root ? "explorer" : "impact");
});

// ---- impact -----------------------------------------------------------------------------------------
async function showImpact() {
  const el = $("impact");
  if (!state.node) { el.innerHTML = "<p>Search a node to see what it affects.</p>"; return; }
  const params = { node: state.node, depth: Math.max(state.depth, 10), as_of: asOfParam() };
  const imp = await api("/api/v1/impact", params);
  const csv = `/api/v1/impact?${new URLSearchParams({ ...params, format: "csv" })}`;
  const list = (title, ids) => `<div><h2>${esc(title)} (${ids.length})</h2><ul>${ids.map((n) => `<li><a href="#/explorer?node=${encodeURIComponent(n)}">${esc(n)}</a></li>`).join("") || "<li>none</li>"}</ul></div>`;
  el.innerHTML = `<h2>What ${esc(state.node)} affects${state.asOf ? ` (as of ${esc(state.asOf)}Z)` : ""}</h2>
    <p>${imp.total} downstream nodes: ${Object.entries(imp.counts).map(([k, n]) => `<span class="pill">${esc(k)} ${n}</span>`).join(" ")}
    ${imp.partial ? " · partial (node cap reached)" : ""} · <a id="csv" href="${esc(csv)}" download="impact.csv">Download CSV</a></p>
    <div class="cols">${list("Models", imp.models)}${list("Deployments", imp.deployments)}${list("Dashboards and reports", imp.dashboards)}</div>`;
  status(`impact of ${state.node}: ${imp.total} nodes`);
}

// ---- health -----------------------------------------------------------------------------------------
let pipelineTimer = 0, lastPipeline = null;
async function showHealth() {
  const el = $("health");
  const [health, alerts] = await Promise.all([api("/api/v1/health"), api("/api/v1/alerts", { open: "true", limit: 500 })]);
  const cols = ["artifacts", "fresh", "late", "stale", "never_seen", "unknown", "coverage_ratio", "open_alerts", "running_runs"];
  const rows = health.namespaces.map((ns) => `<tr><td>${esc(ns.namespace)}</td>${cols.map((c) => `<td>${c === "coverage_ratio" ? ((ns[c] || 0) * 100).toFixed(0) + "%" : ns[c] || 0}</td>`).join("")}</tr>`).join("");
  const byKind = {};
  alerts.alerts.forEach((a) => { byKind[a.kind] = (byKind[a.kind] || 0) + 1; });
  el.innerHTML = `<h2>Freshness and completeness by namespace</h2>
    <table id="namespaces"><tr><th>namespace</th>${cols.map((c) => `<th>${c.replace("_", " ")}</th>`).join("")}</tr>${rows || "<tr><td>no figures yet</td></tr>"}</table>
    <h2>Pipeline</h2><div id="pipeline">…</div>
    <h2>Open alerts (${alerts.alerts.length}) ${Object.entries(byKind).map(([k, n]) => `<span class="pill">${esc(k)} ${n}</span>`).join(" ")}</h2>
    <table id="alerts"><tr><th>kind</th><th>subject</th><th>severity</th><th>since</th><th>reason</th></tr>
    ${alerts.alerts.map((a) => `<tr><td>${esc(a.kind)}</td><td>${a.subject.startsWith("job:") ? esc(a.subject) : `<a href="#/explorer?node=${encodeURIComponent(a.subject)}">${esc(a.subject)}</a>`}</td><td><span class="pill sev-${esc(a.severity)}">${esc(a.severity)}</span></td><td>${esc(when(a.opened_at))}</td><td>${esc(a.reason)}</td></tr>`).join("")}</table>`;
  status(`${health.namespaces.length} namespaces · ${alerts.alerts.length} open alerts`);
  clearInterval(pipelineTimer);
  lastPipeline = null;
  await pollPipeline();
  pipelineTimer = setInterval(() => { if (state.tab === "health") pollPipeline(); else clearInterval(pipelineTimer); }, 3000);
}

async function pollPipeline() {
  const p = await api("/api/v1/pipeline");
  const el = $("pipeline");
  if (!el) return;
  const rate = (table) => lastPipeline ? ((p.rows_inserted[table] || 0) - (lastPipeline.rows_inserted[table] || 0)) / ((p.at - lastPipeline.at) / 1000) : null;
  const rows = Object.keys(p.rows_inserted).sort().map((t) => `<tr><td>${esc(t)}</td><td>${p.rows_inserted[t]}</td><td>${rate(t) == null ? "…" : rate(t).toFixed(1)}</td></tr>`).join("");
  const lag = p.consumer_lag.map((l) => `<tr><td>${esc(l.group)}</td><td>${esc(l.topic)}</td><td>${l.lag}</td></tr>`).join("");
  el.innerHTML = `<div class="cols"><table><tr><th>table</th><th>rows loaded</th><th>rows/s</th></tr>${rows}</table>
    <table><tr><th>consumer group</th><th>topic</th><th>lag</th></tr>${lag || "<tr><td>measuring…</td></tr>"}</table></div>`;
  lastPipeline = p;
}

readHash();
show();
