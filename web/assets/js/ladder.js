// The ladder (sequence diagram) of one connection: a lifeline per node, an
// arrow per message in event order with its payloads, retransmissions and
// notifies marked, and notes where something happened at a node. Only the
// rows in view are in the DOM, so a long run costs no more than a short one.

import { h } from "./util.js";
import { rowLost } from "./model.js";

export class Ladder {
  constructor(root, onSelect) {
    this.root = root;
    this.onSelect = onSelect;
    this.selectedConn = "";
    this.selectedRow = null;
    this.follow = true;
    this.tabs = h("div", { class: "tabs", role: "tablist", id: "ladder-tabs" });
    this.head = h("div", { class: "ladder-head" });
    this.body = h("div", { class: "ladder-body" });
    this.scroll = h("div", { class: "ladder-scroll", id: "ladder-scroll" }, this.body);
    this.empty = h("div", { class: "ladder-empty" }, "No IKE message yet.");
    root.append(this.tabs, this.head, this.scroll, this.empty);
    this.scroll.addEventListener("scroll", () => {
      const el = this.scroll;
      this.follow = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
      this.draw();
    });
    this.lastSig = "";
  }

  // rowHeight is the CSS row height, read once (a style read per frame
  // costs a style recalculation); the large-font toggle forgets it.
  rowHeight() {
    if (!this.rh) {
      const v = parseFloat(getComputedStyle(this.root).getPropertyValue("--ladder-row"));
      this.rh = v > 0 ? v : 34;
    }
    return this.rh;
  }

  render(model) {
    this.model = model;
    const names = [...model.conns.keys()].filter((n) => n);
    for (const c of model.connNodes.keys()) if (!names.includes(c)) names.push(c);
    if (model.conns.has("") && model.conns.get("").rows.length) names.push("");
    if (!names.includes(this.selectedConn)) this.selectedConn = names.find((n) => model.conns.has(n)) ?? names[0] ?? "";
    const tabSig = names.map((n) => n + "=" + (model.conns.get(n) ? model.conns.get(n).rows.length : 0)).join(",") + "|" + this.selectedConn;
    if (tabSig !== this.tabSig) {
      this.tabSig = tabSig;
      this.tabs.replaceChildren(...names.map((n) => {
        const c = model.conns.get(n);
        const count = c ? c.rows.filter((r) => r.type === "msg").length : 0;
        return h("button", {
          class: "tab" + (n === this.selectedConn ? " active" : ""), role: "tab", "data-conn": n,
          "aria-selected": n === this.selectedConn ? "true" : "false",
          onclick: () => { this.selectedConn = n; this.follow = true; this.tabSig = ""; this.render(this.model); },
        }, n || "(no connection)", h("span", { class: "count" }, String(count)));
      }));
    }
    this.draw();
  }

  draw() {
    const model = this.model;
    if (!model) return;
    const conn = model.conns.get(this.selectedConn);
    const rows = conn ? conn.rows : [];
    const cols = conn ? conn.columns : model.connNodes.get(this.selectedConn) || [];
    this.empty.hidden = rows.length > 0;
    const rh = this.rowHeight();
    const total = rows.length * rh + rh;
    if (this.body.style.height !== total + "px") this.body.style.height = total + "px";
    const colSig = cols.join(",");
    if (colSig !== this.colSig) {
      this.colSig = colSig;
      this.head.replaceChildren(...cols.map((c, i) => h("div", { class: "col-name kind-" + (model.kindOf(c) || "other"), style: `left:${xOf(i, cols.length)}%` }, c)));
    }
    if (this.follow) this.scroll.scrollTop = this.scroll.scrollHeight;
    const top = this.scroll.scrollTop;
    const first = Math.max(0, Math.floor(top / rh) - 5);
    const last = Math.min(rows.length, Math.ceil((top + this.scroll.clientHeight) / rh) + 5);
    const sig = [this.selectedConn, colSig, first, last, conn ? conn.version : 0, this.selectedRow && this.selectedRow.index, rh].join("|");
    if (sig === this.lastSig) return;
    this.lastSig = sig;
    const out = cols.map((c, i) => h("div", { class: "lifeline", style: `left:${xOf(i, cols.length)}%` }));
    for (let i = first; i < last; i++) out.push(this.rung(conn, rows[i], cols, rh));
    this.body.replaceChildren(...out);
  }

  rung(conn, r, cols, rh) {
    const top = r.index * rh;
    const sel = this.selectedRow === r ? " selected" : "";
    if (r.type === "note") {
      const i = cols.indexOf(r.node);
      return h("div", { class: "rung note" + (r.bad ? " bad" : "") + sel, style: `top:${top}px;left:${xOf(i, cols.length)}%`, "data-index": r.index, "data-seq": r.seq, title: r.text,
        onclick: () => this.select(r) }, h("span", null, r.text));
    }
    const a = cols.indexOf(r.from), b = cols.indexOf(r.to);
    const xa = xOf(a, cols.length), xb = xOf(b, cols.length);
    const left = Math.min(xa, xb), width = Math.max(Math.abs(xb - xa), 0.5);
    const lost = rowLost(conn, r);
    const cls = ["rung", "msg", r.proto, xb >= xa ? "ltr" : "rtl", r.retrans ? "retrans" : "", r.notifies && r.notifies.length ? "notify" : "", lost ? "lost" : "", !r.recv && !lost && !r.silentReceiver ? "inflight" : "", r.udp ? "udp" : ""].filter(Boolean).join(" ") + sel;
    let label = r.name;
    if (r.proto === "ike" && r.payloads.length) label += ": " + r.payloads.join(", ");
    const marks = [];
    if (r.enc) marks.push(h("span", { class: "mark lock", title: "HDR*: encrypted with the ISAKMP SA's keys (shown decrypted in the inspector)" }, "HDR*"));
    if (r.retrans) marks.push(h("span", { class: "mark again" }, r.retrans));
    if (r.notifies && r.notifies.length) marks.push(h("span", { class: "mark note" }, "N: " + r.notifies.join(", ")));
    if (r.asDuplicate) marks.push(h("span", { class: "mark again", title: "the receiver answered it as a duplicate" }, "duplicate"));
    if (lost) marks.push(h("span", { class: "mark lost", title: "the receiver told of later messages, not of this one" }, "✕ lost"));
    if (r.port === "4500" && r.proto === "ike") marks.push(h("span", { class: "mark port" }, "UDP 4500"));
    const title = r.proto === "esp" ? r.name + (r.payloads[0] ? "\ninner: " + r.payloads[0] : "") : label;
    return h("div", {
      class: cls, style: `top:${top}px;left:${left}%;width:${width}%`, "data-index": r.index, "data-name": r.name,
      "data-seq": r.sent || r.recv, "data-from": r.from, "data-to": r.to, title, tabindex: 0,
      onclick: () => this.select(r), onkeydown: (e) => { if (e.key === "Enter") this.select(r); },
    }, h("div", { class: "label" }, h("span", { class: "text" }, label), ...marks), h("div", { class: "arrow" }));
  }

  select(r) {
    this.selectedRow = r;
    this.lastSig = "";
    this.draw();
    this.onSelect(r);
  }

  // rows gives the connection's rows as the tests and the replay check
  // compare them: names in order, with their ends.
  rows(connName) {
    const c = this.model && this.model.conns.get(connName ?? this.selectedConn);
    return c ? c.rows.map((r) => (r.type === "note" ? { note: r.text, node: r.node } : { name: r.name, proto: r.proto, from: r.from, to: r.to, payloads: r.payloads.join(","), recv: !!r.recv, lost: rowLost(c, r), retrans: r.retrans })) : [];
  }
}

function xOf(i, n) {
  if (n <= 0 || i < 0) return 50;
  return ((i + 0.5) / n) * 100;
}
