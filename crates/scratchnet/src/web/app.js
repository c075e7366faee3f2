// The running lab's page: draws the topology from /api/lab, colours each
// link by its rate from /api/events (and writes a cache's hit share on its
// link), shows a node's tables on click, and
// draws a traced frame's path hop by hop. Changes (link settings, a
// balancer's backends) and traces are POSTs carrying the token from the
// address's fragment (#token=...), which browsers never send to servers.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get("token")
  || sessionStorage.getItem("scratchnet-token");
if (token) {
  sessionStorage.setItem("scratchnet-token", token);
  history.replaceState(null, "", location.pathname);
}

const state = {
  nodes: new Map(), // name -> {name, kind, detail, x, y, el}
  links: new Map(), // port -> {port, node, to, el, hit, label, cache, bps, pps}
  linkOf: new Map(), // a node with one link (a host, a service) -> that link
  last: null, // the previous counters, with their time
  selected: null,
  view: { x: 0, y: 0, w: 1000, h: 600 },
};

// ---- small helpers -------------------------------------------------------

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-scratchnet-token": token || "" },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(text.trim() || r.statusText);
  return JSON.parse(text);
}

function rate(bits) {
  const units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [n, u] of units) if (bits >= n) return (bits / n).toFixed(bits >= 10 * n ? 0 : 1) + u;
  return Math.round(bits).toString();
}

// ---- layout ----------------------------------------------------------------

const KIND_ORDER = { machine: 0, peer: 1, router: 2, switch: 3, service: 4, host: 5 };

// A tree from the root outwards (the machine, else the busiest router):
// each node's depth is a row; leaves take columns in order and parents
// sit over their children. Stable: every choice is by kind, then name.
function layout(nodes, links) {
  const adj = new Map([...nodes.keys()].map((n) => [n, []]));
  for (const l of links) {
    adj.get(l.node)?.push(l.to);
    adj.get(l.to)?.push(l.node);
  }
  const order = (a, b) => (KIND_ORDER[nodes.get(a).kind] - KIND_ORDER[nodes.get(b).kind]) || a.localeCompare(b);
  for (const list of adj.values()) list.sort(order);
  const degree = (n) => adj.get(n).length;
  const roots = [...nodes.keys()].sort((a, b) => {
    const ka = nodes.get(a).kind, kb = nodes.get(b).kind;
    const score = (n, k) => (k === "machine" ? 1e9 : k === "router" ? 1e6 + degree(n) : degree(n));
    return score(b, kb) - score(a, ka) || a.localeCompare(b);
  });
  const children = new Map();
  const depth = new Map();
  const forest = [];
  for (const root of roots) {
    if (depth.has(root)) continue;
    forest.push(root);
    depth.set(root, 0);
    const queue = [root];
    while (queue.length) {
      const n = queue.shift();
      children.set(n, []);
      for (const m of adj.get(n)) {
        if (depth.has(m)) continue;
        depth.set(m, depth.get(n) + 1);
        children.get(n).push(m);
        queue.push(m);
      }
    }
  }
  let column = 0;
  const place = (n) => {
    const kids = children.get(n);
    const node = nodes.get(n);
    node.y = depth.get(n) * 120;
    if (!kids.length) {
      node.x = column++ * 90;
      return;
    }
    kids.forEach(place);
    node.x = (nodes.get(kids[0]).x + nodes.get(kids[kids.length - 1]).x) / 2;
  };
  for (const root of forest) {
    place(root);
    column += 1;
  }
}

// ---- drawing ---------------------------------------------------------------

function shape(kind) {
  switch (kind) {
    case "switch": return svg("rect", { class: "shape", x: -34, y: -14, width: 68, height: 28, rx: 3 });
    case "router": return svg("polygon", { class: "shape", points: "-16,-24 16,-24 30,-8 30,8 16,24 -16,24 -30,8 -30,-8" });
    case "service": return svg("rect", { class: "shape", x: -30, y: -16, width: 60, height: 32, rx: 12 });
    case "machine": case "peer": return svg("polygon", { class: "shape", points: "0,-24 34,0 0,24 -34,0" });
    default: return svg("circle", { class: "shape", r: 18 });
  }
}

function draw(graph) {
  const nodes = new Map(graph.nodes.map((n) => [n.name, { ...n }]));
  layout(nodes, graph.links);
  const linkLayer = $("links"), nodeLayer = $("nodes");
  linkLayer.replaceChildren();
  nodeLayer.replaceChildren();
  state.nodes = nodes;
  state.links = new Map();
  state.linkOf = new Map();
  for (const l of graph.links) {
    const a = nodes.get(l.node), b = nodes.get(l.to);
    if (!a || !b) continue;
    const g = svg("g", { "data-port": l.port });
    const line = svg("line", { class: "link", x1: a.x, y1: a.y, x2: b.x, y2: b.y, "data-port": l.port, "data-bps": "0" });
    const hit = svg("line", { class: "link-hit", x1: a.x, y1: a.y, x2: b.x, y2: b.y });
    const title = svg("title", {}, l.port);
    hit.append(title);
    // Labels sit nearer the deeper end, where links fan out less.
    const [near, far] = a.y >= b.y ? [a, b] : [b, a];
    const mx = near.x * 0.72 + far.x * 0.28, my = near.y * 0.72 + far.y * 0.28;
    const label = svg("text", { class: "rate", x: mx + 4, y: my - 8 });
    label.append(svg("tspan", { x: mx + 4 }), svg("tspan", { x: mx + 4, dy: "1.1em" }));
    const impair = svg("text", { class: "impair-label", x: mx + 4, y: my + 18 });
    const cache = svg("text", { class: "cache-label", x: mx + 4, y: my + 30 });
    g.append(line, hit, label, impair, cache);
    hit.addEventListener("click", (e) => { e.stopPropagation(); showLink(l.port); });
    linkLayer.append(g);
    const link = { ...l, el: line, label, impair, cache, title, bps: [0, 0], pps: [0, 0] };
    state.links.set(l.port, link);
    for (const end of [l.node, l.to]) state.linkOf.set(end, state.linkOf.has(end) ? null : link);
    linkState(link, l.up === undefined ? null : l);
  }
  for (const n of nodes.values()) {
    const g = svg("g", { class: `node ${n.kind}`, transform: `translate(${n.x},${n.y})`, "data-node": n.name });
    g.append(shape(n.kind), svg("text", { y: 36 }, n.name));
    if (n.detail.length) g.append(svg("text", { class: "sub", y: 48 }, n.detail[0]));
    g.append(svg("title", {}, [n.name, n.kind, ...n.detail].join("\n")));
    g.addEventListener("click", (e) => { e.stopPropagation(); showNode(n.name); });
    nodeLayer.append(g);
    n.el = g;
  }
  fit();
}

// A link's state: down, impaired (and how), or a perfect link.
function linkState(link, s) {
  const down = s && s.up === false;
  const impaired = s && s.summary && s.summary !== "none";
  link.el.classList.toggle("down", !!down);
  link.el.classList.toggle("impaired", !!impaired && !down);
  link.state = s;
  link.impair.textContent = down ? "down" : impaired ? s.summary : "";
  link.el.dataset.state = down ? "down" : impaired ? "impaired" : "up";
}

// ---- zoom and pan ----------------------------------------------------------

function applyView() {
  const v = state.view;
  $("graph").setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
}

function fit() {
  const xs = [...state.nodes.values()].map((n) => n.x), ys = [...state.nodes.values()].map((n) => n.y);
  if (!xs.length) return;
  const pad = 70;
  const box = $("graph").getBoundingClientRect();
  let w = Math.max(...xs) - Math.min(...xs) + 2 * pad, h = Math.max(...ys) - Math.min(...ys) + 2 * pad;
  const aspect = box.width / Math.max(box.height, 1) || 1.6;
  if (w / h < aspect) w = h * aspect; else h = w / aspect;
  const cx = (Math.max(...xs) + Math.min(...xs)) / 2, cy = (Math.max(...ys) + Math.min(...ys)) / 2;
  state.view = { x: cx - w / 2, y: cy - h / 2, w, h };
  applyView();
}

function zoomTo(node) {
  const w = 900, h = 560;
  state.view = { x: node.x - w / 2, y: node.y - h / 2, w, h };
  applyView();
}

function setupPanZoom() {
  const g = $("graph");
  g.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = g.getBoundingClientRect(), v = state.view;
    const k = e.deltaY > 0 ? 1.15 : 1 / 1.15;
    const px = v.x + ((e.clientX - r.left) / r.width) * v.w, py = v.y + ((e.clientY - r.top) / r.height) * v.h;
    state.view = { x: px - (px - v.x) * k, y: py - (py - v.y) * k, w: v.w * k, h: v.h * k };
    applyView();
  }, { passive: false });
  let drag = null;
  g.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, v: { ...state.view } }; g.classList.add("dragging"); });
  window.addEventListener("pointerup", () => { drag = null; g.classList.remove("dragging"); });
  window.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const r = g.getBoundingClientRect();
    state.view = { ...drag.v, x: drag.v.x - ((e.clientX - drag.x) / r.width) * drag.v.w, y: drag.v.y - ((e.clientY - drag.y) / r.height) * drag.v.h };
    applyView();
  });
  g.addEventListener("dblclick", fit);
}

// ---- live rates --------------------------------------------------------------

// Each second: every port's counters; a link's rate is their change.
// "rx" is what the node sent into the lab, "tx" what the lab delivered.
function onCounters(data) {
  const now = performance.now();
  const last = state.last;
  for (const [port, c] of Object.entries(data.ports)) {
    const link = state.links.get(port);
    if (!link) continue;
    if (last && last.ports[port]) {
      const p = last.ports[port], dt = (now - last.at) / 1000;
      link.bps = [((c[1] - p[1]) * 8) / dt, ((c[3] - p[3]) * 8) / dt];
      link.pps = [(c[0] - p[0]) / dt, (c[2] - p[2]) / dt];
      link.drops = c[4] - p[4];
    }
    const total = link.bps[0] + link.bps[1];
    link.el.dataset.bps = Math.round(total).toString();
    link.el.dataset.pps = Math.round(link.pps[0] + link.pps[1]).toString();
    link.el.classList.toggle("busy1", total > 0 && total < 1e6);
    link.el.classList.toggle("busy2", total >= 1e6 && total < 1e8);
    link.el.classList.toggle("busy3", total >= 1e8);
    link.el.style.strokeWidth = total > 0 ? String(2 + Math.min(6, Math.log10(total + 1) - 2)) : "";
    const [up, down] = link.label.children;
    up.textContent = total > 0 ? `↑${rate(link.bps[0])}` : "";
    down.textContent = total > 0 ? `↓${rate(link.bps[1])}` : "";
    link.title.textContent = `${port}: ${rate(link.bps[0])} bit/s (${Math.round(link.pps[0])} pkt/s) in, ${rate(link.bps[1])} bit/s (${Math.round(link.pps[1])} pkt/s) out; ${c[4]} dropped`;
    linkState(link, data.links[port] || null);
  }
  for (const [name, c] of Object.entries(data.caches || {})) {
    const link = state.linkOf.get(name);
    const before = last && last.caches && last.caches[name];
    if (link) cacheShare(link, c, before, last ? (now - last.at) / 1000 : 1);
  }
  state.last = { at: now, ports: data.ports, caches: data.caches };
  $("clock").textContent = new Date().toLocaleTimeString();
}

// A cache's link: the share of its answers served from its store (fresh,
// stale or revalidated) over the last second, or so far when it was idle;
// the tooltip has each outcome.
function cacheShare(link, c, before, dt) {
  const stored = (o) => o.hits + o.stale + o.revalidated;
  const all = (o) => stored(o) + o.misses + o.passed;
  const recent = before ? all(c) - all(before) : 0;
  const [hits, total, when] = recent > 0
    ? [stored(c) - stored(before), recent, `${Math.round(recent / dt)}/s`]
    : [stored(c), all(c), "so far"];
  if (!total) return;
  const share = hits / total;
  link.cache.textContent = `cache: ${Math.round(share * 100)}% from store, ${when}`;
  link.cache.dataset.share = share.toFixed(3);
  link.cache.classList.toggle("high", share >= 0.8);
  link.cache.classList.toggle("low", share < 0.5);
  link.title.textContent += `; cache: ${c.hits} hits, ${c.stale} stale, ${c.revalidated} revalidated, ${c.misses} misses, ${c.passed} passed`;
}

function listen() {
  const events = new EventSource("/api/events");
  events.onmessage = (e) => onCounters(JSON.parse(e.data));
  events.onerror = () => { $("clock").textContent = "reconnecting…"; };
}

// ---- tables ------------------------------------------------------------------

// Any JSON as tables: arrays of objects as rows, objects as key/value pairs.
function tables(value, caption) {
  const box = el("div");
  if (Array.isArray(value)) {
    if (!value.length) { box.append(el("p", { class: "muted" }, `${caption}: none`)); return box; }
    if (value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
      const keys = [...new Set(value.flatMap(Object.keys))];
      const t = el("table");
      t.append(el("caption", {}, `${caption} (${value.length})`));
      const head = el("tr");
      keys.forEach((k) => head.append(el("th", {}, k)));
      t.append(head);
      for (const row of value.slice(0, 500)) {
        const tr = el("tr");
        keys.forEach((k) => tr.append(cell(row[k])));
        t.append(tr);
      }
      box.append(t);
      if (value.length > 500) box.append(el("p", { class: "muted" }, `and ${value.length - 500} more`));
      return box;
    }
    box.append(el("p", {}, `${caption}: ${value.map(String).join(", ")}`));
    return box;
  }
  if (value && typeof value === "object") {
    const t = el("table");
    t.append(el("caption", {}, caption));
    const nested = [];
    for (const [k, v] of Object.entries(value)) {
      if (v && typeof v === "object" && (Array.isArray(v) ? v.some((x) => x && typeof x === "object") : Object.keys(v).length > 3)) {
        nested.push([k, v]);
        continue;
      }
      const tr = el("tr");
      tr.append(el("th", {}, k), cell(v));
      t.append(tr);
    }
    if (t.rows.length) box.append(t);
    for (const [k, v] of nested) box.append(tables(v, `${caption} › ${k}`));
    return box;
  }
  box.append(el("p", {}, `${caption}: ${String(value)}`));
  return box;
}

function cell(v) {
  if (v === null || v === undefined) return el("td", {}, "");
  if (typeof v === "number") return el("td", { class: "num" }, String(v));
  if (typeof v === "object") return el("td", {}, JSON.stringify(v));
  return el("td", {}, String(v));
}

function select(name) {
  for (const n of state.nodes.values()) n.el.classList.toggle("selected", n.name === name);
  state.selected = name;
}

async function showNode(name) {
  select(name);
  $("detail-title").textContent = name;
  const detail = $("detail");
  detail.replaceChildren(el("p", { class: "muted" }, "loading…"));
  const r = await fetch(`/api/node?name=${encodeURIComponent(name)}`);
  if (!r.ok) { detail.replaceChildren(el("p", { class: "error" }, await r.text())); return; }
  const s = await r.json();
  const parts = [];
  for (const sw of s.fabric?.switches || []) parts.push(tables(sw, `switch ${sw.name}`));
  for (const rt of s.fabric?.routers || []) parts.push(tables(rt, `router ${rt.name}`));
  for (const h of s.services || []) parts.push(tables(h, `service host ${h.name}`));
  const counters = s.service_counters?.[name];
  if (counters) {
    parts.push(tables(counters, "service"));
    for (const pool of counters.pools || []) parts.push(backends(name, pool));
  }
  const mine = [...state.links.values()].filter((l) => l.node === name || l.to === name);
  const ports = el("div");
  ports.append(el("h2", {}, "Links"));
  for (const l of mine) {
    const b = el("button", { type: "button", "data-port": l.port }, l.port);
    b.addEventListener("click", () => showLink(l.port));
    ports.append(b, document.createTextNode(" "));
  }
  detail.replaceChildren(...parts, ports);
}

// A balancer pool's backends, each with drain and restore.
function backends(service, pool) {
  const box = el("div");
  for (const b of pool.backends || []) {
    // The balancer names a backend as its topology does (`lb LB drain web1`).
    const name = b.name || b.addr;
    const row = el("form");
    row.append(el("span", {}, `${name} (${b.addr}) ${b.state || ""}`));
    for (const what of ["drain", "restore"]) {
      const btn = el("button", { type: "button", "data-backend": name, "data-action": what }, what);
      btn.addEventListener("click", async () => {
        try {
          const r = await post("/api/command", { service, request: { balancer: { [what]: name } } });
          row.append(el("span", { class: "muted" }, ` ${r.done || "done"}`));
        } catch (e) { row.append(el("span", { class: "error" }, ` ${e.message}`)); }
      });
      row.append(btn);
    }
    box.append(row);
  }
  return box;
}

// A link: its rate, its state, and the forms that change or capture it.
function showLink(port) {
  const link = state.links.get(port);
  if (!link) return;
  select(null);
  $("detail-title").textContent = `link ${port}`;
  const d = $("detail");
  const info = el("p", {}, `${link.node} ⇄ ${link.to}. ${link.title.textContent}`);
  const form = el("form", { id: "impair-form" });
  const knobs = [["delay", "50ms"], ["jitter", "5ms"], ["loss", "1%"], ["rate", "10mbit"]];
  for (const [k, ph] of knobs) {
    form.append(el("label", {}, k), el("input", { id: `impair-${k}`, name: k, placeholder: ph, size: 6 }));
  }
  const apply = el("button", { id: "impair-apply", type: "submit" }, "impair");
  const clear = el("button", { id: "impair-clear", type: "button" }, "clear");
  const down = el("button", { id: "link-down", type: "button" }, "take down");
  const up = el("button", { id: "link-up", type: "button" }, "bring up");
  const result = el("p", { id: "link-result", class: "muted" }, link.state ? `now: ${link.state.up === false ? "down" : link.state.summary}` : "now: up, none");
  form.append(apply, clear, down, up);
  const change = async (body) => {
    try {
      const s = await post("/api/link", { port, ...body });
      linkState(link, s);
      result.className = "";
      result.textContent = `now: ${s.up ? "up" : "down"}, ${s.summary}`;
    } catch (e) { result.className = "error"; result.textContent = e.message; }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const set = knobs.map(([k]) => [k, form.elements[k].value.trim()]).filter(([, v]) => v);
    change({ set });
  });
  clear.addEventListener("click", () => change({ clear: true }));
  down.addEventListener("click", () => change({ up: false }));
  up.addEventListener("click", () => change({ up: true }));

  const cap = el("form", { id: "capture-form" });
  cap.append(el("label", {}, "capture the next"), el("input", { id: "capture-count", value: "100", size: 5 }),
    el("label", {}, "frames matching"), el("input", { id: "capture-filter", placeholder: "any", size: 12 }),
    el("button", { id: "capture-go", type: "submit" }, "download pcapng"));
  const capResult = el("p", { class: "muted" });
  cap.addEventListener("submit", async (e) => {
    e.preventDefault();
    capResult.textContent = "capturing (up to 10 s)…";
    const q = new URLSearchParams({ port, count: cap.elements[0].value, filter: cap.elements[1].value });
    const r = await fetch(`/api/capture?${q}`);
    if (!r.ok) { capResult.textContent = await r.text(); return; }
    const blob = await r.blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: `${port}.pcapng` });
    document.body.append(a);
    a.click();
    a.remove();
    capResult.textContent = `${blob.size} bytes of pcapng saved`;
  });
  d.replaceChildren(info, el("h2", {}, "Impair or take down"), form, result, el("h2", {}, "Capture"), cap, capResult);
  if (!token) d.append(el("p", { class: "muted" }, "Read-only: open the address printed at start, with its #token, to change the lab."));
}

// ---- paths -------------------------------------------------------------------

function clearPath() {
  for (const n of state.nodes.values()) {
    n.el.classList.remove("onpath");
    n.el.querySelectorAll(".step, .step-text").forEach((e) => e.remove());
  }
  for (const l of state.links.values()) l.el.classList.remove("onpath");
}

function linkBetween(a, b) {
  for (const l of state.links.values()) if ((l.node === a && l.to === b) || (l.node === b && l.to === a)) return l;
  return null;
}

// Draws a frame's hops: each node it met, numbered in order, and the
// links between them; each record's decisions listed beside.
function drawPath(records, whatIf) {
  clearPath();
  const steps = $("path-steps");
  steps.replaceChildren();
  if (!records.length) {
    $("path-status").textContent = "No matching frame in 15 s: make the traffic (curl, ping) and trace again.";
    return;
  }
  $("path-status").textContent = whatIf ? "What would happen (nothing was sent):" : "The frame's path:";
  // The traced frame's own records are drawn; what it caused (a
  // neighbour solicitation, an answer) is listed after them.
  const frame = records[0].record.frame;
  let n = 0;
  for (const r of records) {
    const own = r.record.frame === frame;
    const li = el("li", own ? {} : { class: "muted" });
    li.append(el("pre", {}, r.text));
    steps.append(li);
    if (!own) continue;
    const hops = [r.record.from.split(".")[0]];
    for (const e of r.record.events) hops.push(e.node.split(".")[0]);
    let prev = null;
    for (const name of hops) {
      const node = state.nodes.get(name);
      if (!node || name === prev) continue;
      if (prev) linkBetween(prev, name)?.el.classList.add("onpath");
      if (!node.el.classList.contains("onpath")) {
        node.el.classList.add("onpath");
        n += 1;
        node.el.append(svg("circle", { class: "step", cx: 24, cy: -22, r: 9 }), svg("text", { class: "step-text", x: 24, y: -18 }, String(n)));
      }
      prev = name;
    }
  }
}

function setupPath(graph) {
  const portSel = $("trace-port"), hostSel = $("inject-host");
  const hosts = graph.nodes.filter((n) => n.kind === "host" || n.kind === "service").map((n) => n.name).sort();
  for (const h of hosts) {
    portSel.append(el("option", { value: h }, h));
    hostSel.append(el("option", { value: h }, h));
  }
  const trace = async (port, filter) => {
    $("path-status").textContent = `waiting for the next frame${port ? ` from ${port}` : ""} matching “${filter}”…`;
    $("path-steps").replaceChildren();
    try {
      drawPath(await post("/api/trace", { port: port || null, filter }), false);
    } catch (e) { $("path-status").textContent = e.message; }
  };
  $("trace-form").addEventListener("submit", (e) => {
    e.preventDefault();
    trace(portSel.value, $("trace-filter").value);
  });
  $("inject-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      drawPath(await post("/api/inject", { host: hostSel.value, spec: $("inject-spec").value }), true);
    } catch (err) { $("path-status").textContent = err.message; }
  });
  // A preset for each host: its next web request (the SYN that opens it).
  for (const h of graph.nodes.filter((n) => n.kind === "host").map((n) => n.name).sort().slice(0, 6)) {
    const b = el("button", { type: "button", "data-preset": `${h}-web` }, `${h}'s next web request`);
    b.addEventListener("click", () => {
      portSel.value = h;
      $("trace-filter").value = "tcp and dst port 80";
      trace(h, "tcp and dst port 80");
    });
    $("presets").append(b);
  }
}

// ---- search --------------------------------------------------------------------

function setupSearch() {
  $("search").addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    const q = e.target.value.trim().toLowerCase();
    let found = null;
    for (const n of state.nodes.values()) {
      const hit = q && n.name.toLowerCase().includes(q);
      n.el.classList.toggle("found", !!hit);
      if (hit && (!found || n.name.toLowerCase() === q)) found = n;
    }
    if (found) { zoomTo(found); showNode(found.name); }
  });
}

// ---- start -----------------------------------------------------------------------

async function start() {
  $("mode").textContent = token ? "" : "read-only (no token)";
  const r = await fetch("/api/lab");
  const graph = await r.json();
  $("lab").textContent = `lab ${graph.lab}: ${graph.nodes.length} nodes, ${graph.links.length} links`;
  document.title = `scratchnet: ${graph.lab}`;
  draw(graph);
  setupPath(graph);
  setupPanZoom();
  setupSearch();
  $("graph").addEventListener("click", () => select(null));
  listen();
  document.body.dataset.ready = "true";
}

start().catch((e) => { $("lab").textContent = `cannot load the lab: ${e.message}`; });
