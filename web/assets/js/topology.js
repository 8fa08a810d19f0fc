// The topology: nodes by kind, links and LANs with their impairments, NAT
// tables and SAs under their nodes, and packets moving along the links.
// Laid out by a small force-directed layout seeded from the lab, so every
// screen in the room shows the same picture; nodes can be dragged, and the
// positions are remembered per lab in localStorage.

import { s, ipOf, fmtImpair, seeded, hashString } from "./util.js";
import { saKey } from "./model.js";

const W = 1000;
const H = 560;
const kinds = ["host", "router", "gateway", "nat", "strongswan", "vpnc"];

export class Topology {
  constructor(svg, lab, model) {
    this.svg = svg;
    this.lab = lab;
    this.model = model;
    this.anims = [];
    this.espBudget = { t: 0, n: 0, skipped: 0 };
    this.pos = new Map();
    this.adj = new Map();
    this.nodeEls = new Map();
    this.linkEls = [];
    this.build();
  }

  // vertices: nodes, and each LAN as a hub of its members.
  vertices() {
    const v = (this.lab.nodes || []).map((n) => n.name);
    for (const l of this.lab.lans || []) v.push("lan:" + l.id);
    return v;
  }

  edges() {
    const e = [];
    for (const l of this.lab.links || []) if (l.a && l.b) e.push([l.a.node, l.b.node, l]);
    for (const l of this.lab.lans || []) for (const m of l.members || []) e.push(["lan:" + l.id, m.node, l]);
    return e;
  }

  build() {
    const verts = this.vertices();
    const edges = this.edges();
    for (const v of verts) this.adj.set(v, []);
    for (const [a, b] of edges) {
      if (!this.adj.has(a) || !this.adj.has(b)) continue;
      this.adj.get(a).push(b);
      this.adj.get(b).push(a);
    }
    this.storeKey = "ipseclab.layout." + (this.lab.name || "") + "." + hashString(verts.join(","));
    let saved = null;
    try { saved = JSON.parse(localStorage.getItem(this.storeKey) || "null"); } catch (e) { saved = null; }
    if (saved && verts.every((v) => saved[v])) for (const v of verts) this.pos.set(v, saved[v]);
    else this.layout(verts, edges);

    this.svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    this.svg.replaceChildren();
    this.gLinks = s("g", { class: "links" });
    this.gNodes = s("g", { class: "nodes" });
    this.gPackets = s("g", { class: "packets" });
    this.gDrops = s("g", { class: "drops" });
    this.svg.append(s("defs", null, s("filter", { id: "halo" })), this.gLinks, this.gNodes, this.gPackets, this.gDrops);
    this.legend();
    this.sampled = s("text", { class: "sampled", x: W - 8, y: H - 12, "text-anchor": "end" });
    this.svg.append(this.sampled);

    for (const [a, b, l] of edges) {
      if (!this.pos.has(a) || !this.pos.has(b)) continue;
      const lan = a.startsWith("lan:");
      const line = s("line", { class: "link" + (lan ? " lan-member" : "") });
      const label = s("text", { class: "impair", "text-anchor": "middle" });
      const g = s("g", { class: "link-g", "data-link": lan ? "" : l.id || "" }, line, label);
      this.gLinks.append(g);
      this.linkEls.push({ a, b, l, lan, line, label, g });
    }
    for (const v of verts) this.gNodes.append(this.nodeEl(v));
    this.place();
  }

  legend() {
    const g = s("g", { class: "legend", transform: `translate(8, ${H - 16})` });
    let x = 0;
    for (const k of kinds) {
      const item = s("g", { transform: `translate(${x}, 0)`, class: "kind-" + k }, shape(k, 7), s("text", { x: 11, y: 4 }, k === "strongswan" ? "strongSwan" : k === "nat" ? "NAT" : k));
      g.append(item);
      x += 22 + (k.length + 1) * 7.5;
    }
    this.svg.append(g);
  }

  nodeEl(v) {
    if (v.startsWith("lan:")) {
      const lan = (this.lab.lans || []).find((l) => "lan:" + l.id === v) || {};
      const g = s("g", { class: "node lan", "data-node": v },
        s("rect", { x: -34, y: -9, width: 68, height: 18, rx: 9 }),
        s("text", { class: "name", y: 4, "text-anchor": "middle" }, lan.name || lan.id || "LAN"),
        s("text", { class: "impair", y: 26, "text-anchor": "middle" }, fmtImpair(lan.impair)));
      this.drag(g, v);
      this.nodeEls.set(v, { g });
      return g;
    }
    const n = this.model.nodeByName.get(v) || { name: v, kind: "" };
    const kind = kinds.includes(n.kind) ? n.kind : "other";
    const addrs = [];
    for (const i of n.interfaces || []) for (const a of i.addresses || []) addrs.push(a);
    const info = s("g", { class: "info" });
    const g = s("g", { class: "node kind-" + kind, "data-node": v, "data-kind": n.kind || "" },
      s("title", null, `${v} (${n.kind || "node"})\n` + (n.interfaces || []).map((i) => `${i.name}: ${(i.addresses || []).join(", ")}`).join("\n")),
      shape(kind, 20),
      s("text", { class: "name", y: 36, "text-anchor": "middle" }, v),
      s("text", { class: "addrs", y: 50, "text-anchor": "middle" }, addrs.map(ipOf).join(" · ")),
      info);
    this.drag(g, v);
    this.nodeEls.set(v, { g, info });
    return g;
  }

  drag(g, v) {
    let active = false;
    g.addEventListener("pointerdown", (e) => {
      active = true;
      g.setPointerCapture(e.pointerId);
      g.classList.add("dragging");
      e.preventDefault();
    });
    g.addEventListener("pointermove", (e) => {
      if (!active) return;
      const m = this.svg.getScreenCTM();
      if (!m) return;
      const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(m.inverse());
      this.pos.set(v, { x: clamp(p.x, 20, W - 20), y: clamp(p.y, 20, H - 20) });
      this.place();
    });
    const end = () => {
      if (!active) return;
      active = false;
      g.classList.remove("dragging");
      const o = {};
      for (const [k, p] of this.pos) o[k] = p;
      try { localStorage.setItem(this.storeKey, JSON.stringify(o)); } catch (e) { /* private mode */ }
    };
    g.addEventListener("pointerup", end);
    g.addEventListener("pointercancel", end);
  }

  resetLayout() {
    try { localStorage.removeItem(this.storeKey); } catch (e) { /* ignore */ }
    this.layout(this.vertices(), this.edges());
    this.place();
  }

  // layout is Fruchterman–Reingold with a seeded start: the same lab gives
  // the same picture everywhere.
  layout(verts, edges) {
    const rnd = seeded(hashString(this.lab.name || "") ^ (Number(this.lab.seed) || 0));
    const n = verts.length;
    const idx = new Map(verts.map((v, i) => [v, i]));
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = W * (0.2 + 0.6 * rnd());
      y[i] = H * (0.2 + 0.6 * rnd());
    }
    const E = edges.map(([a, b]) => [idx.get(a), idx.get(b)]).filter(([a, b]) => a !== undefined && b !== undefined);
    // Nodes that carry tables (NAT mappings, SAs) push harder, to leave
    // room for them.
    const weight = verts.map((v) => {
      if (v.startsWith("lan:")) return 0.8;
      const kind = this.model.kindOf(v);
      return kind === "nat" || kind === "gateway" || kind === "strongswan" || kind === "vpnc" ? 1.5 : 1;
    });
    const k = Math.sqrt((W * H * 0.5) / Math.max(n, 1));
    let temp = W / 8;
    const iters = 400;
    const dx = new Float64Array(n);
    const dy = new Float64Array(n);
    for (let it = 0; it < iters; it++) {
      dx.fill(0);
      dy.fill(0);
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          let ex = x[i] - x[j], ey = y[i] - y[j];
          let d2 = ex * ex + ey * ey;
          if (d2 < 0.01) { ex = rnd() - 0.5; ey = rnd() - 0.5; d2 = 0.25; }
          const f = (k * k * weight[i] * weight[j]) / d2;
          dx[i] += ex * f; dy[i] += ey * f;
          dx[j] -= ex * f; dy[j] -= ey * f;
        }
      }
      for (const [a, b] of E) {
        const ex = x[a] - x[b], ey = y[a] - y[b];
        const d = Math.sqrt(ex * ex + ey * ey) || 0.1;
        const f = d / k;
        dx[a] -= ex * f; dy[a] -= ey * f;
        dx[b] += ex * f; dy[b] += ey * f;
      }
      for (let i = 0; i < n; i++) {
        // a slight pull to the middle keeps separate islands on screen
        dx[i] += (W / 2 - x[i]) * 0.01;
        dy[i] += (H / 2 - y[i]) * 0.01;
        const d = Math.sqrt(dx[i] * dx[i] + dy[i] * dy[i]) || 1;
        x[i] += (dx[i] / d) * Math.min(d, temp);
        y[i] += (dy[i] / d) * Math.min(d, temp);
      }
      temp *= 0.985;
    }
    // Fit into the view, leaving room under each node for its tables; a
    // wide layout is kept wide (the screen is), so fit per axis.
    const pad = { l: 90, r: 90, t: 50, b: 130 };
    const minX = Math.min(...x), maxX = Math.max(...x), minY = Math.min(...y), maxY = Math.max(...y);
    const sx = (W - pad.l - pad.r) / Math.max(maxX - minX, 1);
    const sy = (H - pad.t - pad.b) / Math.max(maxY - minY, 1);
    for (let i = 0; i < n; i++) {
      this.pos.set(verts[i], {
        x: maxX - minX < 1 ? W / 2 : pad.l + (x[i] - minX) * sx,
        y: maxY - minY < 1 ? H / 2 : pad.t + (y[i] - minY) * sy,
      });
    }
  }

  place() {
    for (const [v, el] of this.nodeEls) {
      const p = this.pos.get(v);
      if (!p) continue;
      el.g.setAttribute("transform", `translate(${p.x.toFixed(1)}, ${p.y.toFixed(1)})`);
      // Tables under a node near an edge grow away from it.
      if (el.info) {
        const anchor = p.x < W * 0.22 ? "start" : p.x > W * 0.78 ? "end" : "middle";
        el.info.setAttribute("text-anchor", anchor);
        el.info.setAttribute("transform", anchor === "start" ? "translate(-24, 0)" : anchor === "end" ? "translate(24, 0)" : "");
      }
    }
    for (const e of this.linkEls) {
      const a = this.pos.get(e.a), b = this.pos.get(e.b);
      e.line.setAttribute("x1", a.x); e.line.setAttribute("y1", a.y);
      e.line.setAttribute("x2", b.x); e.line.setAttribute("y2", b.y);
      e.label.setAttribute("x", (a.x + b.x) / 2);
      e.label.setAttribute("y", (a.y + b.y) / 2 - 6);
    }
  }

  // render shows the model's state at the cursor: link impairments, links
  // down, NAT tables and SAs. state is /api/state's answer when the lab is
  // live (it knows what the events do not, e.g. mappings made before).
  render(state) {
    const model = this.model;
    for (const e of this.linkEls) {
      if (e.lan) continue;
      const st = model.links.get(e.l.id) || model.links.get(linkName(e.l));
      const imp = (st && st.impair) || e.l.impair;
      e.label.textContent = fmtImpair(imp);
      e.g.classList.toggle("down", !!(st && st.down));
    }
    const skipped = this.espBudget.skipped;
    this.sampled.textContent = skipped ? `ESP sampled: ${skipped} packets not animated` : "";
    const natState = state && state.nat;
    const saState = state && state.sas;
    for (const [name, el] of this.nodeEls) {
      if (!el.info) continue;
      const lines = [];
      const kind = model.kindOf(name);
      if (kind === "nat") {
        const maps = natState && natState[name] ? natState[name] : [...(model.nat.get(name) || new Map()).values()];
        if (maps.length) lines.push(["head", `NAT table (${maps.length})`]);
        for (const m of maps.slice(0, 6)) lines.push(["nat", fmtMapping(m)]);
        if (maps.length > 6) lines.push(["more", `… ${maps.length - 6} more`]);
      }
      const sas = mergeSAs(name, saState && saState[name], model);
      if (sas.length) {
        for (const sa of sas.slice(0, 5)) lines.push(["sa", fmtSA(sa)]);
        if (sas.length > 5) lines.push(["more", `… ${sas.length - 5} more SAs`]);
      }
      const big = document.body.classList.contains("big");
      const sig = big + lines.map((l) => l.join(":")).join("\n");
      if (el.sig === sig) continue;
      el.sig = sig;
      el.info.replaceChildren(...lines.map(([cls, t], i) => s("text", { class: "info-line " + cls, y: (big ? 76 : 66) + i * (big ? 17 : 13) }, t)));
    }
  }

  // path is the shortest chain of vertices from a to b (breadth first).
  path(a, b) {
    if (!this.adj.has(a) || !this.adj.has(b)) return null;
    if (a === b) return [a];
    const prev = new Map([[a, null]]);
    const q = [a];
    while (q.length) {
      const v = q.shift();
      for (const w of this.adj.get(v)) {
        if (prev.has(w)) continue;
        prev.set(w, v);
        if (w === b) {
          const out = [b];
          for (let u = v; u !== null; u = prev.get(u)) out.push(u);
          return out.reverse();
        }
        q.push(w);
      }
    }
    return null;
  }

  // effects animates what applying events produced. ESP is sampled (a few
  // packets a second) so that a transfer does not flood the picture.
  effects(fx, speed) {
    const now = performance.now();
    for (const f of fx) {
      if (f.type === "drop") { this.drop(f); continue; }
      if (f.type !== "packet") continue;
      if (f.proto === "esp") {
        if (now - this.espBudget.t > 1000) { this.espBudget.t = now; this.espBudget.n = 0; }
        if (this.espBudget.n >= 4) { this.espBudget.skipped++; continue; }
        this.espBudget.n++;
      }
      if (this.anims.length >= 24) this.anims.shift().el.remove();
      const p = this.path(f.from, f.to);
      if (!p || p.length < 2) continue;
      const pts = p.map((v) => this.pos.get(v));
      const el = s("g", { class: "packet " + (f.cls || "") },
        s("circle", { r: 7 }),
        s("text", { x: 10, y: -9 }, f.label));
      this.gPackets.append(el);
      const hop = 600 / Math.max(speed || 1, 0.25);
      this.anims.push({ el, pts, start: now, dur: Math.min(hop * (pts.length - 1), 4000) });
    }
    if (this.anims.length && !this.raf) this.raf = requestAnimationFrame((t) => this.tick(t));
  }

  tick(t) {
    this.raf = 0;
    this.anims = this.anims.filter((a) => {
      const k = (t - a.start) / a.dur;
      if (k >= 1) { a.el.remove(); return false; }
      const segs = a.pts.length - 1;
      const pos = Math.max(k, 0) * segs;
      const i = Math.min(Math.floor(pos), segs - 1);
      const f = pos - i;
      const x = a.pts[i].x + (a.pts[i + 1].x - a.pts[i].x) * f;
      const y = a.pts[i].y + (a.pts[i + 1].y - a.pts[i].y) * f;
      a.el.setAttribute("transform", `translate(${x.toFixed(1)}, ${y.toFixed(1)})`);
      return true;
    });
    if (this.anims.length) this.raf = requestAnimationFrame((t2) => this.tick(t2));
  }

  drop(f) {
    let p = null;
    if (f.node) p = this.pos.get(f.node);
    if (!p && f.link) {
      const e = this.linkEls.find((e) => !e.lan && (e.l.id === f.link || linkName(e.l) === f.link));
      if (e) { const a = this.pos.get(e.a), b = this.pos.get(e.b); p = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }; }
    }
    if (!p) return;
    const el = s("g", { class: "drop", transform: `translate(${p.x}, ${p.y - 28})` },
      s("text", { class: "x", "text-anchor": "middle", y: 0 }, "✕"),
      s("text", { class: "why", "text-anchor": "middle", y: -16 }, f.label || "drop"));
    this.gDrops.append(el);
    setTimeout(() => el.remove(), 2500);
  }

  clearAnimations() {
    for (const a of this.anims) a.el.remove();
    this.anims = [];
  }
}

function shape(kind, r) {
  switch (kind) {
    case "host":
      return s("rect", { class: "shape", x: -r * 1.1, y: -r * 0.8, width: r * 2.2, height: r * 1.6, rx: r * 0.25 });
    case "router":
      return s("circle", { class: "shape", r });
    case "gateway":
      return s("polygon", { class: "shape", points: poly(6, r * 1.1, Math.PI / 6) });
    case "nat":
      return s("polygon", { class: "shape", points: poly(4, r * 1.25, 0) });
    case "strongswan":
      return s("polygon", { class: "shape", points: poly(8, r * 1.05, Math.PI / 8) });
    case "vpnc":
      return s("rect", { class: "shape", x: -r * 1.2, y: -r * 0.7, width: r * 2.4, height: r * 1.4, rx: r * 0.7 });
    default:
      return s("circle", { class: "shape", r, "stroke-dasharray": "4 3" });
  }
}

function poly(n, r, rot) {
  const pts = [];
  for (let i = 0; i < n; i++) {
    const a = rot + (i * 2 * Math.PI) / n;
    pts.push(`${(r * Math.cos(a)).toFixed(1)},${(r * Math.sin(a)).toFixed(1)}`);
  }
  return pts.join(" ");
}

function clamp(v, lo, hi) {
  return Math.max(lo, Math.min(hi, v));
}

function linkName(l) {
  return l.a && l.b ? `${l.a.node}:${l.a.iface}--${l.b.node}:${l.b.iface}` : "";
}

// mergeSAs joins what the events say of a node's SAs with the last
// /api/state (polled every 1.5 s, so it can lag the events, but it knows
// the SAs made before the page's history began and their counters).
function mergeSAs(node, polled, model) {
  const byKey = new Map();
  for (const sa of (model.sas.get(node) || new Map()).values()) byKey.set(saKey(sa), sa);
  for (const sa of Array.isArray(polled) ? polled : []) {
    const k = saKey(sa);
    if (!model.gone.has(node + "|" + k)) byKey.set(k, sa);
  }
  return [...byKey.values()];
}

export function fmtMapping(m) {
  if (!m || typeof m !== "object") return String(m);
  if (m.inside || m.outside) {
    const arrow = m.forwarded ? "⇐" : "⇒";
    return `${m.proto || ""} ${m.inside || "?"} ${arrow} ${m.outside || "?"}${m.remote ? " ↔ " + m.remote : ""}${m.forwarded ? " (forward)" : ""}`.trim();
  }
  return JSON.stringify(m);
}

// fmtSA writes an SA on one line, from an event's SAInfo or /api/state's.
export function fmtSA(sa) {
  if (!sa || typeof sa !== "object") return String(sa);
  const conn = sa.connection ? ` [${sa.connection}]` : "";
  if (sa.type === "isakmp") return `ISAKMP SA ↔ ${sa.remote || "?"}${conn}`;
  if (sa.spi_in || sa.spi_out) {
    const encap = sa.udp_encap ? " in UDP" : "";
    const pkts = typeof sa.packets_in === "number" ? ` · ${sa.packets_in}/${sa.packets_out} pkts` : "";
    return `${(sa.type || "esp").toUpperCase()}${encap} in ${sa.spi_in || "?"} out ${sa.spi_out || "?"}${conn}${pkts}`;
  }
  return JSON.stringify(sa);
}
