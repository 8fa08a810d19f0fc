// The inspector: the decoded packet of a message (GET /api/packet/SEQ) as a
// collapsible tree, layer by layer like Wireshark's packet details, with the
// explanation, and the lab's derived keys on request (?keys=1). An event
// that is not a packet is shown as its own fields.

import { h } from "./util.js";

const packetKinds = new Set(["ike-message", "ike-retransmit", "esp-packet"]);

export class Inspector {
  constructor(root) {
    this.root = root;
    this.seq = 0;
    this.token = 0;
    this.show(null);
  }

  show(ev, seqs, packetSeqs) {
    this.ev = ev;
    this.token++;
    if (!ev) {
      this.root.replaceChildren(h("p", { class: "hint" }, "Click a message in the ladder or an event in the list to inspect it."));
      return;
    }
    this.seq = ev.seq;
    this.packetSeqs = packetSeqs && packetSeqs.length ? packetSeqs : [ev.seq];
    this.root.replaceChildren(
      h("div", { class: "insp-head" },
        h("span", { class: "insp-seq" }, "#" + ev.seq),
        h("span", { class: "insp-kind" }, ev.kind),
        ev.node ? h("span", { class: "insp-node" }, ev.node) : null,
        ev.connection ? h("span", { class: "insp-conn" }, "[" + ev.connection + "]") : null),
      h("p", { class: "insp-msg" }, ev.message || ""),
      ev.explain ? h("p", { class: "explain" }, ev.explain) : null,
      seqs && seqs.length > 1 ? h("p", { class: "insp-pair" }, "events: " + seqs.map((s) => "#" + s).join(" → ")) : null,
      (this.body = h("div", { class: "insp-body" })));
    if (packetKinds.has(ev.kind)) this.fetchPacket(false);
    else this.body.replaceChildren(tree({ name: "Event", fields: [], children: [objectNode("fields", eventFields(ev))] }, 0, true));
  }

  // fetchPacket asks for the packet of each candidate event in turn (a
  // retransmission's own events carry none; the message it repeats does).
  async fetchPacket(keys) {
    const token = this.token;
    this.body.replaceChildren(h("p", { class: "hint" }, "decoding…"));
    let pkt = null;
    let why = "";
    for (const seq of this.packetSeqs) {
      try {
        const r = await fetch(`api/packet/${seq}${keys ? "?keys=1" : ""}`);
        if (!r.ok) throw new Error(`${r.status} ${errorText(await r.text())}`);
        pkt = await r.json();
        break;
      } catch (e) {
        why = why || e.message;
      }
    }
    if (token !== this.token) return;
    if (!pkt) {
      this.body.replaceChildren(h("p", { class: "warn" }, `No decoded packet for #${this.seq}: ${why}`),
        tree(objectNode("event", eventFields(this.ev)), 0, true));
      return;
    }
    if (token !== this.token) return;
    const parts = [];
    parts.push(h("div", { class: "pkt-title", id: "packet-title" }, pkt.title || ""));
    if (pkt.seq && pkt.seq !== this.seq) parts.push(h("p", { class: "hint" }, `the packet as event #${pkt.seq} carries it`));
    if (pkt.explain && pkt.explain !== (this.ev && this.ev.explain)) parts.push(h("p", { class: "explain pkt-explain" }, pkt.explain));
    const layers = h("div", { class: "layers", id: "packet-layers" }, ...(pkt.layers || []).map((l) => tree(l, 0, true)));
    parts.push(layers);
    if (pkt.keys && typeof pkt.keys === "object") {
      parts.push(h("div", { class: "keys", id: "packet-keys" }, tree(objectNode("Keys (derived by the lab)", pkt.keys), 0, true)));
    } else if (keys) {
      parts.push(h("p", { class: "hint", id: "packet-keys" }, "The lab published no keys for this packet (run with --keys)."));
    } else {
      parts.push(h("button", { class: "keys-btn", id: "show-keys", onclick: () => this.fetchPacket(true) }, "Show keys"));
    }
    this.body.replaceChildren(...parts);
  }
}

// tree renders a NODE {name, fields: [[label, value]], children: [NODE]}
// as nested <details>, open down to depth 2.
export function tree(node, depth, open) {
  if (!node || typeof node !== "object") return h("span", null, String(node));
  const fields = Array.isArray(node.fields) ? node.fields : [];
  const children = Array.isArray(node.children) ? node.children : [];
  const d = h("details", { class: "tree-node depth-" + depth, "data-name": node.name || "" });
  if (open || depth < 2) d.open = true;
  d.append(h("summary", null, node.name || "(unnamed)"));
  if (fields.length) {
    d.append(h("table", { class: "fields" }, ...fields.map((f) => {
      const [label, value] = Array.isArray(f) ? f : [f && f.label, f && f.value];
      return h("tr", null, h("th", null, String(label ?? "")), h("td", null, fmtValue(value)));
    })));
  }
  for (const c of children) d.append(tree(c, depth + 1, false));
  return d;
}

function errorText(t) {
  try {
    const j = JSON.parse(t);
    if (j && j.error) return j.error;
  } catch (e) { /* not JSON */ }
  return t.trim();
}

function fmtValue(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// objectNode turns a plain JSON object into a tree node.
export function objectNode(name, obj) {
  const fields = [];
  const children = [];
  for (const [k, v] of Object.entries(obj || {})) {
    if (v && typeof v === "object" && !Array.isArray(v)) children.push(objectNode(k, v));
    else fields.push([k, Array.isArray(v) ? v.map((x) => (typeof x === "object" ? JSON.stringify(x) : x)).join(", ") : v]);
  }
  return { name, fields, children };
}

function eventFields(ev) {
  const out = {};
  for (const [k, v] of Object.entries(ev)) if (!k.startsWith("_")) out[k] = v;
  return out;
}
