// Small helpers shared by the page's modules: DOM building, addresses, and
// the names of IKE exchanges as the terminal timeline writes them.

const SVG = "http://www.w3.org/2000/svg";

// h builds an HTML element: h("div", {class: "x", onclick: f}, "text", child).
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// s builds an SVG element.
export function s(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  setAttrs(e, attrs);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function setAttrs(e, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
}

// ipOf strips the port and prefix: "1.2.3.4:500", "[2001:db8::1]:500",
// "10.1.0.1/24" all give the bare address.
export function ipOf(addr) {
  if (!addr || typeof addr !== "string") return "";
  let a = addr.trim();
  const slash = a.indexOf("/");
  if (slash >= 0) a = a.slice(0, slash);
  if (a.startsWith("[")) {
    const end = a.indexOf("]");
    return end > 0 ? a.slice(1, end) : a;
  }
  const colons = a.split(":").length - 1;
  if (colons === 1) return a.slice(0, a.indexOf(":"));
  return a;
}

export function portOf(addr) {
  if (!addr || typeof addr !== "string") return "";
  const i = addr.lastIndexOf(":");
  if (i < 0 || addr.indexOf(":") !== i && !addr.startsWith("[")) return "";
  return addr.slice(i + 1);
}

export function notifiesOf(ev) {
  const n = ev.fields && ev.fields.notify;
  if (typeof n === "string") return [n];
  if (Array.isArray(n)) return n.filter((x) => typeof x === "string");
  return [];
}

const longNames = {
  main: "Main Mode",
  aggressive: "Aggressive Mode",
  quick: "Quick Mode",
  informational: "Informational",
  transaction: "Transaction",
  xauth: "XAUTH",
  modecfg: "Mode Config",
};
const shortNames = { main: "MM", aggressive: "AM", quick: "QM", transaction: "Transaction", xauth: "XAUTH", modecfg: "ModeCfg" };

// informationalName tells what an Informational exchange carries: a Delete,
// a DPD probe or its answer, or another notification.
function informationalName(ike, notes) {
  const p = ike.payloads || [];
  if (notes.includes("R-U-THERE")) return "DPD";
  if (notes.includes("R-U-THERE-ACK")) return "DPD ack";
  if (p.includes("D")) return "Delete";
  if (notes.length) return notes[0];
  return "Informational";
}

// messageName is the ladder's name of an IKE message: "Main Mode 5/6".
export function messageName(ev) {
  const ike = ev.ike || {};
  const notes = notifiesOf(ev);
  let name = ike.exchange === "informational" ? informationalName(ike, notes) : longNames[ike.exchange] || ike.exchange || "IKE";
  if (ike.msg_total > 1 && ike.msg_num) name += ` ${ike.msg_num}/${ike.msg_total}`;
  return name;
}

// shortName is the label a packet carries on the topology: "MM 5/6".
export function shortName(ev) {
  const ike = ev.ike || {};
  const notes = notifiesOf(ev);
  let name = ike.exchange === "informational" ? informationalName(ike, notes) : shortNames[ike.exchange] || ike.exchange || "IKE";
  if (ike.msg_total > 1 && ike.msg_num) name += ` ${ike.msg_num}/${ike.msg_total}`;
  return name;
}

// payloadList writes each N with its type when the types are known, as the
// terminal ladder does: "ID, HASH, N(INITIAL-CONTACT)".
export function payloadList(ev) {
  const p = (ev.ike && ev.ike.payloads) || [];
  const notes = notifiesOf(ev);
  const nCount = p.filter((x) => x === "N").length;
  let i = 0;
  return p.map((x) => (x === "N" && nCount === notes.length ? `N(${notes[i++]})` : x));
}

// fmtImpair writes an impairment compactly, "15ms ±2ms, loss 1%", for the
// flat form and for the two directions of a link ("a-to-b", "b-to-a").
export function fmtImpair(imp) {
  if (!imp || typeof imp !== "object") return "";
  const dirs = Object.keys(imp).filter((k) => /-to-/.test(k));
  if (dirs.length) {
    const parts = dirs.map((d) => [d, fmtFlat(imp[d])]).filter(([, t]) => t);
    if (!parts.length) return "";
    if (parts.every(([, t]) => t === parts[0][1])) return parts[0][1];
    return parts.map(([d, t]) => `${d === "a-to-b" ? "→" : d === "b-to-a" ? "←" : d} ${t}`).join("  ");
  }
  return fmtFlat(imp);
}

function fmtFlat(p) {
  if (!p || typeof p !== "object") return "";
  const out = [];
  for (const [k, v] of Object.entries(p)) {
    if (v === null || v === undefined || v === "" || v === 0 || v === "0s" || v === false) continue;
    if (k === "delay") out.unshift(String(v));
    else if (k === "jitter") out.push("±" + v);
    else if (typeof v === "object") out.push(`${k} ${JSON.stringify(v)}`);
    else out.push(`${k} ${v}`);
  }
  return out.join(", ");
}

// seeded returns a deterministic pseudo-random generator (mulberry32), so
// that a lab is laid out the same way on every screen of the class.
export function seeded(seed) {
  let a = seed >>> 0 || 0x9e3779b9;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function hashString(str) {
  let x = 2166136261;
  for (let i = 0; i < str.length; i++) {
    x ^= str.charCodeAt(i);
    x = Math.imul(x, 16777619);
  }
  return x >>> 0;
}

export const stepNames = ["Lab", "Initiation", "IKE Phase 1", "IKE Phase 2", "Data transfer", "Termination"];

// protocolOf sorts an event into the event list's protocol filter.
export function protocolOf(ev) {
  const k = ev.kind || "";
  if (k.startsWith("esp-") || k === "sa-counters" || k === "route-mtu") return "esp";
  if (k.startsWith("nat-mapping") || k === "nat-flush") return "nat";
  if (ev.ike || k.startsWith("ike-") || k.startsWith("phase") || k.startsWith("dpd") || k.startsWith("nat-") ||
      ["acquire", "initiate", "proposal-chosen", "notify", "rekey", "rekey-collision", "sa-expired", "sa-deleted",
       "keys-derived", "xauth", "modecfg", "auth-failed", "no-proposal", "peer-certificate", "isakmp-sa-connection"].includes(k)) return "ike";
  if (k.startsWith("link-") || k.startsWith("capture-")) return "link";
  if (k === "strongswan-log" || k === "vpnc-log") return "log";
  if (k.startsWith("ping") || k === "traffic-report") return "traffic";
  if (k.startsWith("script") || k.startsWith("expect")) return "script";
  return "lab";
}

export function fmtTime(ms) {
  if (!isFinite(ms)) return "";
  const s = ms / 1000;
  return (s < 0 ? "-" : "+") + Math.abs(s).toFixed(3) + "s";
}
