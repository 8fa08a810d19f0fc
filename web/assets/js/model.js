// The model: what the page knows at the replay cursor, built by applying the
// events in order. Every view reads it; nothing else interprets events.
// Applying is incremental (one event at a time, O(1) each); going back in
// time resets and applies again from the start, which for 10,000 events
// takes a few milliseconds.

import { ipOf, portOf, messageName, shortName, payloadList, notifiesOf } from "./util.js";

const failureKinds = new Set(["phase1-failed", "phase2-failed", "auth-failed", "no-proposal", "dpd-dead", "lab-deploy-failed"]);

// Kinds drawn on a connection's ladder as a note at a node, with what they say.
const noteKinds = {
  "acquire": () => "acquire: no SA for this packet",
  "initiate": () => "initiated by hand",
  "nat-detected": (ev) => (ev.fields && (ev.fields.nat_local || ev.fields.nat_remote) ? "NAT detected" : "no NAT"),
  "nat-float": (ev) => `floated to UDP 4500: ${(ev.fields && ev.fields.local) || (ev.ike && ev.ike.local) || ""} → ${(ev.fields && ev.fields.remote) || (ev.ike && ev.ike.remote) || ""}`,
  "nat-mapping-changed": () => "peer's NAT mapping changed",
  "phase1-up": () => "ISAKMP SA established",
  "phase2-up": (ev) => (ev.sa && ev.sa.spi_in ? `IPsec SAs up: in ${ev.sa.spi_in} out ${ev.sa.spi_out}${ev.sa.udp_encap ? " (ESP in UDP 4500)" : ""}` : "IPsec SAs established"),
  "phase1-failed": (ev) => "phase 1 failed" + (ev.fields && ev.fields.reason ? ": " + ev.fields.reason : ""),
  "phase2-failed": (ev) => "phase 2 failed" + (ev.fields && ev.fields.reason ? ": " + ev.fields.reason : ""),
  "auth-failed": () => "AUTHENTICATION-FAILED",
  "no-proposal": () => "NO-PROPOSAL-CHOSEN",
  "rekey": () => "rekey",
  "rekey-collision": () => "rekey collision",
  "sa-expired": () => "SA expired",
  "sa-deleted": (ev) => (ev.sa && ev.sa.type === "isakmp" ? "ISAKMP SA deleted" : "IPsec SAs deleted"),
  "dpd-dead": () => "peer declared dead",
  "stack-crashed": () => "IPsec stack crashed",
  "stack-restarted": () => "IPsec stack restarted",
  "xauth": (ev) => "XAUTH " + ((ev.fields && ev.fields.result) || ""),
  "modecfg": (ev) => "Mode Config " + ((ev.fields && ev.fields.address) || ""),
  "esp-drop": (ev) => "ESP dropped: " + ((ev.fields && ev.fields.reason) || ""),
};

export class Model {
  constructor(lab) {
    this.lab = lab || { nodes: [], links: [], lans: [], connections: [] };
    this.nodeByName = new Map();
    this.owner = new Map(); // address → node name
    for (const n of this.lab.nodes || []) {
      this.nodeByName.set(n.name, n);
      for (const i of n.interfaces || []) for (const a of i.addresses || []) this.owner.set(ipOf(a), n.name);
    }
    this.connNodes = new Map();
    for (const c of this.lab.connections || []) this.connNodes.set(c.name, (c.nodes || []).slice());
    this.reset();
  }

  reset() {
    this.applied = 0; // events applied, the cursor
    this.lastSeq = 0;
    this.stepFirst = [0, 0, 0, 0, 0, 0]; // seq of the first event of each step
    this.stepFailed = [false, false, false, false, false, false];
    this.currentStep = 0;
    this.conns = new Map(); // name → {name, columns: [node], rows: []}
    this.sides = new Map(); // icookie → nodes that told of it
    this.cookieConn = new Map();
    this.pending = new Map(); // pairing key → rows sent and not yet received
    this.lastByKey = new Map(); // pairing key and sender → the last first sending
    this.lastByNum = new Map(); // the same without the message ID
    this.nat = new Map(); // node → Map(key → mapping)
    this.sas = new Map(); // node → Map(key → SAInfo)
    this.links = new Map(); // link id → {impair, down, lost}
    this.gone = new Set(); // node|SA key of SAs deleted or expired
    this.spiOwner = new Map(); // inbound SPI → node
    this.spiSender = new Map(); // outbound SPI → node
    this.ended = false;
  }

  kindOf(node) {
    const n = this.nodeByName.get(node);
    return n ? n.kind : "";
  }

  // silent nodes publish no IKE events of their own (strongSwan, vpnc): what
  // they send is known from the receiver's events only.
  silent(node) {
    const k = this.kindOf(node);
    return k === "strongswan" || k === "vpnc";
  }

  // peerOf names the node at the other end of an event: the other node that
  // told of the same ISAKMP SA, else the connection's other node when the
  // address belongs to a NAT or to no node, else the owner of the address.
  peerOf(ev, addr) {
    const ike = ev.ike;
    if (ike && ike.icookie) {
      for (const n of this.sides.get(ike.icookie) || []) if (n !== ev.node) return n;
    }
    const owner = this.owner.get(ipOf(addr));
    const ownerKind = owner ? this.kindOf(owner) : "";
    if (owner && ownerKind !== "nat") return owner;
    const others = (this.connNodes.get(ev.connection) || []).filter((n) => n !== ev.node);
    if (others.length === 1) return others[0];
    return owner || ipOf(addr) || "?";
  }

  conn(name) {
    let c = this.conns.get(name);
    if (!c) {
      c = { name, columns: (this.connNodes.get(name) || []).slice(), rows: [], lastRecv: {}, version: 0 };
      this.conns.set(name, c);
    }
    return c;
  }

  addRow(connName, row) {
    const c = this.conn(connName);
    for (const n of [row.from, row.to, row.node]) if (n && !c.columns.includes(n)) c.columns.push(n);
    row.index = c.rows.length;
    c.rows.push(row);
    c.version++;
    if (row.recv) this.received(row);
    return row;
  }

  received(row) {
    const c = this.conn(row.conn);
    if (row.to && !c.columns.includes(row.to)) c.columns.push(row.to);
    c.version++;
    const k = row.proto + "|" + row.to;
    if ((c.lastRecv[k] ?? -1) < row.index) c.lastRecv[k] = row.index;
  }

  // apply takes the next event and returns what the topology should animate.
  apply(ev) {
    this.applied++;
    if (ev.seq > this.lastSeq) this.lastSeq = ev.seq;
    const fx = [];
    const step = ev.step | 0;
    if (step >= 1 && step <= 5) {
      if (!this.stepFirst[step]) this.stepFirst[step] = ev.seq || this.applied;
      this.currentStep = step;
      if (failureKinds.has(ev.kind) || ev.level === "error") this.stepFailed[step] = true;
    }
    const ike = ev.ike;
    if (ike && ike.icookie && ev.node) {
      const s = this.sides.get(ike.icookie) || [];
      if (!s.includes(ev.node)) s.push(ev.node);
      this.sides.set(ike.icookie, s);
      if (ev.connection) this.cookieConn.set(ike.icookie, ev.connection);
    }
    const connName = ev.connection || (ike && this.cookieConn.get(ike.icookie)) || "";

    switch (ev.kind) {
      case "ike-message":
      case "ike-retransmit":
        if (ike && ike.exchange) this.ikeMessage(ev, connName, fx);
        break;
      case "esp-packet":
        this.espPacket(ev, connName, fx);
        break;
      case "esp-drop":
      case "ike-malformed":
      case "malformed-packet":
        fx.push({ type: "drop", node: ev.node, label: (ev.fields && ev.fields.reason) || ev.kind });
        break;
      case "nat-mapping-new": {
        const f = ev.fields || {};
        const m = this.natOf(ev.node);
        m.set(natKey(f), f);
        break;
      }
      case "nat-mapping-expired": {
        this.natOf(ev.node).delete(natKey(ev.fields || {}));
        break;
      }
      case "nat-flush":
        this.natOf(ev.node).clear();
        break;
      case "phase1-up":
      case "phase2-up":
        if (ev.sa && ev.node) this.saOf(ev.node).set(saKey(ev.sa), Object.assign({ connection: connName }, ev.sa));
        // ESP with this SPI goes to this node (whatever NAT is between).
        if (ev.sa && ev.node && ev.sa.type !== "isakmp") {
          if (ev.sa.spi_in) this.spiOwner.set(ev.sa.spi_in, ev.node);
          if (ev.sa.spi_out) this.spiSender.set(ev.sa.spi_out, ev.node);
        }
        break;
      case "sa-deleted":
      case "sa-expired":
        if (ev.sa && ev.node) {
          this.saOf(ev.node).delete(saKey(ev.sa));
          this.gone.add(ev.node + "|" + saKey(ev.sa));
        }
        break;
      case "stack-crashed":
        if (ev.node) this.saOf(ev.node).clear();
        break;
      case "link-impair":
      case "link-up":
      case "link-down":
      case "link-counters":
        this.linkEvent(ev, fx);
        break;
    }
    const note = noteKinds[ev.kind];
    if (note && connName && ev.node) {
      this.addRow(connName, { type: "note", node: ev.node, text: note(ev), seq: ev.seq, bad: failureKinds.has(ev.kind) || ev.kind === "esp-drop" });
    }
    return fx;
  }

  natOf(node) {
    let m = this.nat.get(node);
    if (!m) this.nat.set(node, (m = new Map()));
    return m;
  }

  saOf(node) {
    let m = this.sas.get(node);
    if (!m) this.sas.set(node, (m = new Map()));
    return m;
  }

  linkState(id) {
    let l = this.links.get(id);
    if (!l) this.links.set(id, (l = { impair: null, down: false, lost: 0 }));
    return l;
  }

  linkEvent(ev, fx) {
    if (!ev.link) return;
    const l = this.linkState(ev.link);
    if (ev.kind === "link-impair" && ev.fields && ev.fields.params) l.impair = ev.fields.params;
    if (ev.kind === "link-down") l.down = true;
    if (ev.kind === "link-up") l.down = false;
    if (ev.kind === "link-counters" && ev.fields) {
      let lost = 0;
      for (const d of Object.values(ev.fields)) if (d && typeof d === "object") lost += (d.lost | 0) + (d.down_drops | 0) + (d.mtu_drops | 0) + (d.queue_drops | 0);
      if (lost > l.lost) fx.push({ type: "drop", link: ev.link, label: `${lost - l.lost} lost` });
      l.lost = Math.max(l.lost, lost);
    }
  }

  ikeMessage(ev, connName, fx) {
    const ike = ev.ike;
    const retrans = ev.kind === "ike-retransmit";
    // A retransmission carries no payload list (nor the packet): it has the
    // key of the message it repeats, whose payloads it takes.
    // (Its msg_id may be missing too: then it repeats the last first
    // sending of that message number.)
    let key = [ike.icookie, ike.exchange, ike.msg_num || 0, ike.msg_id || 0].join("|");
    const orig = retrans && !ike.msg_id ? this.lastByNum.get([ike.icookie, ike.exchange, ike.msg_num || 0, ev.node].join("|")) : this.lastByKey.get(key + "|" + ev.node);
    if (orig) key = orig.key;
    const base = {
      type: "msg", name: messageName(ev), short: shortName(ev), exchange: ike.exchange,
      payloads: (ike.payloads && ike.payloads.length) || !orig ? payloadList(ev) : orig.payloads, orig: retrans && orig ? orig : null,
      enc: !!ike.encrypted, notifies: notifiesOf(ev), conn: connName, proto: "ike", msgNum: ike.msg_num || 0, msgId: ike.msg_id || 0,
      retrans: retrans ? retransText(ev) : "", port: portOf(ike.local) === "4500" || portOf(ike.remote) === "4500" ? "4500" : portOf(ike.local),
    };
    if (ike.dir === "received") {
      const list = this.pending.get(key);
      const row = list && takeFrom(list, ev.node);
      if (row) {
        row.recv = ev.seq;
        row.to = ev.node;
        this.received(row);
        return;
      }
      const from = this.peerOf(ev, ike.remote);
      this.addRow(connName, Object.assign(base, { from, to: ev.node, recv: ev.seq, sent: 0, silentSender: true }));
      return;
    }
    // Sent (or sent again).
    const to = this.peerOf(ev, ike.remote);
    // The answer to a duplicate may be dropped unseen by a receiver that
    // has moved on: it is never called lost.
    const dup = !!(ev.fields && ev.fields.duplicate);
    // Answering a duplicate proves the peer's repeat arrived: it is that
    // repeat's receipt.
    if (dup) this.duplicateReceived(ev);
    const row = this.addRow(connName, Object.assign(base, { from: ev.node, to, sent: ev.seq, recv: 0, silentReceiver: this.silent(to) || dup }));
    row.key = key;
    if (!retrans) {
      this.lastByKey.set(key + "|" + ev.node, row);
      this.lastByNum.set([ike.icookie, ike.exchange, ike.msg_num || 0, ev.node].join("|"), row);
    }
    if (!dup) {
      if (!this.pending.has(key)) this.pending.set(key, []);
      this.pending.get(key).push(row);
    }
    fx.push({ type: "packet", proto: "ike", from: ev.node, to, label: row.short + (retrans ? " ↻" : ""), cls: "ike" + (retrans ? " retrans" : "") });
  }

  duplicateReceived(ev) {
    let best = null;
    for (const [key, list] of this.pending) {
      if (!key.startsWith(ev.ike.icookie + "|")) continue;
      for (const r of list) if (r.to === ev.node && r.from !== ev.node && (!best || r.sent > best.sent)) best = r;
    }
    if (!best) return;
    const list = this.pending.get(best.key);
    if (list) list.splice(list.indexOf(best), 1);
    best.recv = ev.seq;
    best.asDuplicate = true;
    this.received(best);
  }

  espPacket(ev, connName, fx) {
    const p = ev.packet || {};
    const msg = ev.message || "";
    const outer = p.outer || "";
    const m = /([0-9a-fA-F.:]+)\s*→\s*([0-9a-fA-F.:]+)/.exec(outer.replace(/^.*?(ESP|AH)\s+/, ""));
    const sent = msg.startsWith("out") || (!msg.startsWith("in") && m && this.owner.get(m[1]) === ev.node);
    const udp = /^UDP/.test(outer);
    const proto = /\bAH\b/.test(outer) ? "AH" : "ESP";
    const key = ["esp", p.spi, p.seq].join("|");
    const label = `${proto}${udp ? " in UDP 4500" : ""} · SPI ${p.spi || "?"}${p.seq ? " · seq " + p.seq : ""}`;
    const base = { type: "msg", proto: "esp", name: label, short: `${proto} ${p.spi || ""}`, payloads: p.inner ? [p.inner] : [], conn: connName, udp };
    if (sent) {
      const owner = this.spiOwner.get(p.spi);
      const to = owner && owner !== ev.node ? owner : this.peerOf(ev, m ? m[2] : "");
      const row = this.addRow(connName, Object.assign(base, { from: ev.node, to, sent: ev.seq, recv: 0, silentReceiver: this.silent(to) }));
      if (!this.pending.has(key)) this.pending.set(key, []);
      this.pending.get(key).push(row);
      fx.push({ type: "packet", proto: "esp", from: ev.node, to, label: base.short + (udp ? " (UDP)" : ""), cls: "esp" + (udp ? " udp" : "") });
      return;
    }
    const list = this.pending.get(key);
    const row = list && takeFrom(list, ev.node);
    if (row) {
      row.recv = ev.seq;
      this.received(row);
      return;
    }
    const sender = this.spiSender.get(p.spi);
    const from = sender && sender !== ev.node ? sender : this.peerOf(ev, m ? m[1] : "");
    this.addRow(connName, Object.assign(base, { from, to: ev.node, recv: ev.seq, sent: 0, silentSender: true }));
    fx.push({ type: "packet", proto: "esp", from, to: ev.node, label: base.short, cls: "esp" + (udp ? " udp" : "") });
  }
}

// takeFrom removes and returns the newest row in list sent by a node other
// than the receiver: a retransmission that arrives stands for the copies
// before it that did not.
function takeFrom(list, receiver) {
  for (let i = list.length - 1; i >= 0; i--) {
    if (list[i].from !== receiver) return list.splice(i, 1)[0];
  }
  return null;
}

function retransText(ev) {
  const f = ev.fields || {};
  if (f.duplicate) return "↻ again for a duplicate";
  if (f.try && f.tries) return `↻ again (${f.try} of ${f.tries}${f.after_ms ? ", after " + fmtMs(f.after_ms) : ""})`;
  return "↻ sent again";
}

function fmtMs(ms) {
  return ms >= 1000 ? ms / 1000 + "s" : ms + "ms";
}

function natKey(f) {
  if (f.conntrack_id) return String(f.conntrack_id);
  return [f.proto, f.inside, f.outside, f.remote].join("|");
}

// saKey names an SA alike in events (icookie, rcookie) and in /api/state
// (an ISAKMP SA's cookies as its SPIs).
export function saKey(sa) {
  if (sa.type === "isakmp") return "isakmp|" + (sa.icookie || sa.spi_in) + "|" + (sa.rcookie || sa.spi_out);
  return sa.type + "|" + (sa.spi_in || "") + "|" + (sa.spi_out || "");
}

// rowLost says whether a sent message is known to be lost: its receiver
// tells of what it gets, and told of a later message of the connection but
// not of this one. (The end of a run proves nothing: a Delete to a peer that
// has already gone is ignored unseen.)
export function rowLost(conn, row) {
  if (row.type !== "msg" || row.recv || row.silentReceiver || !row.sent) return false;
  return (conn.lastRecv[row.proto + "|" + row.to] ?? -1) > row.index;
}
