// The event list: every event up to the cursor, filtered by node,
// connection, step and protocol and by a search, one line each. Only the
// lines in view are in the DOM; the filtered index grows as events come.

import { h, protocolOf, stepNames, fmtTime } from "./util.js";

export class EventList {
  constructor(root, controls, onSelect) {
    this.root = root;
    this.onSelect = onSelect;
    this.filter = { node: "", connection: "", step: "", proto: "", q: "" };
    this.index = []; // positions in events[] that pass the filter, below the cursor
    this.scanned = 0; // events[] positions looked at so far
    this.follow = true;
    this.selected = -1;
    this.body = h("div", { class: "list-body" });
    this.scroll = h("div", { class: "list-scroll", id: "event-scroll", tabindex: 0 }, this.body);
    root.append(this.scroll);
    this.scroll.addEventListener("scroll", () => {
      const el = this.scroll;
      this.follow = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
      this.draw();
    });
    this.scroll.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
      e.preventDefault();
      const at = this.index.indexOf(this.selected);
      const next = this.index[Math.max(0, Math.min(this.index.length - 1, at + (e.key === "ArrowDown" ? 1 : -1)))];
      if (next !== undefined) this.select(next);
    });
    this.controls = controls;
    for (const [k, el] of Object.entries(controls)) {
      el.addEventListener(k === "q" ? "input" : "change", () => {
        this.filter[k] = el.value.trim();
        this.refilter();
      });
    }
  }

  setOptions(lab, nodes, conns) {
    const fill = (sel, values, all) => {
      const cur = sel.value;
      sel.replaceChildren(h("option", { value: "" }, all), ...values.map((v) => h("option", { value: v }, v)));
      sel.value = values.includes(cur) ? cur : "";
    };
    fill(this.controls.node, nodes, "all nodes");
    fill(this.controls.connection, conns, "all connections");
  }

  passes(ev) {
    const f = this.filter;
    if (f.node && ev.node !== f.node) return false;
    if (f.connection && ev.connection !== f.connection) return false;
    if (f.step !== "" && String(ev.step | 0) !== f.step) return false;
    if (f.proto && protocolOf(ev) !== f.proto) return false;
    if (f.q) {
      const q = f.q.toLowerCase();
      const hay = (ev._hay ??= [ev.kind, ev.node, ev.connection, ev.link, ev.message, ev.explain].filter(Boolean).join(" ").toLowerCase());
      if (!hay.includes(q)) return false;
    }
    return true;
  }

  refilter() {
    this.index = [];
    this.scanned = 0;
    this.sig = "";
    this.update(this.events, this.cursor);
  }

  // update brings the index to the cursor: forward by scanning only the new
  // events, back by dropping what lies beyond.
  update(events, cursor, t0) {
    this.events = events;
    this.t0 = t0 ?? this.t0;
    if (cursor < this.scanned) {
      while (this.index.length && this.index[this.index.length - 1] >= cursor) this.index.pop();
      this.scanned = cursor;
    }
    for (let i = this.scanned; i < cursor; i++) if (this.passes(events[i])) this.index.push(i);
    this.scanned = cursor;
    this.cursor = cursor;
    this.draw();
  }

  // rowHeight is the CSS row height, read once (a style read per frame
  // costs a style recalculation); the large-font toggle forgets it.
  rowHeight() {
    if (!this.rh) {
      const v = parseFloat(getComputedStyle(this.root).getPropertyValue("--list-row"));
      this.rh = v > 0 ? v : 24;
    }
    return this.rh;
  }

  draw() {
    if (!this.events) return;
    const rh = this.rowHeight();
    const n = this.index.length;
    const height = n * rh + "px";
    if (this.body.style.height !== height) this.body.style.height = height;
    if (this.follow) this.scroll.scrollTop = this.scroll.scrollHeight;
    const top = this.scroll.scrollTop;
    const first = Math.max(0, Math.floor(top / rh) - 5);
    const last = Math.min(n, Math.ceil((top + this.scroll.clientHeight) / rh) + 5);
    const sig = [first, last, n, this.selected, rh].join("|");
    if (sig === this.sig) return;
    this.sig = sig;
    const out = [];
    for (let j = first; j < last; j++) out.push(this.line(this.index[j], j * rh));
    this.body.replaceChildren(...out);
    const c = document.getElementById("event-count");
    if (c) c.textContent = `${n} shown of ${this.cursor}`;
  }

  line(i, top) {
    const ev = this.events[i];
    const t = ev._t !== undefined && this.t0 !== undefined ? fmtTime(ev._t - this.t0) : "";
    const step = ev.step | 0;
    return h("div", {
      class: `ev level-${ev.level || "info"} proto-${protocolOf(ev)}` + (i === this.selected ? " selected" : ""),
      style: `top:${top}px`, "data-seq": ev.seq, "data-kind": ev.kind, title: ev.explain || ev.message || "",
      onclick: () => this.select(i),
    },
    h("span", { class: "seq" }, "#" + ev.seq),
    h("span", { class: "time" }, t),
    h("span", { class: "stp stp-" + step, title: stepNames[step] || "" }, step ? String(step) : "·"),
    h("span", { class: "node" }, ev.node || ev.link || ""),
    h("span", { class: "kind" }, ev.kind || "?"),
    h("span", { class: "msg" }, (ev.connection ? `[${ev.connection}] ` : "") + (ev.message || "")));
  }

  select(i) {
    this.selected = i;
    this.sig = "";
    this.draw();
    this.onSelect(this.events[i]);
  }

  // reveal scrolls to an event (the one the inspector shows) if it passes.
  reveal(seq) {
    const j = this.index.findIndex((i) => this.events[i].seq === seq);
    if (j < 0) return;
    this.selected = this.index[j];
    this.follow = false;
    const rh = this.rowHeight();
    this.scroll.scrollTop = Math.max(0, j * rh - this.scroll.clientHeight / 2);
    this.sig = "";
    this.draw();
  }
}
