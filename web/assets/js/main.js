// The page's entry point: loads the lab, follows the event stream, and moves
// a cursor over the events (following the live end, or played, stepped and
// scrubbed by the replay controls). Every view is redrawn at most once per
// animation frame from the model at the cursor.

import { Model } from "./model.js";
import { Topology } from "./topology.js";
import { Ladder } from "./ladder.js";
import { EventList } from "./eventlist.js";
import { Inspector } from "./inspector.js";
import { h, stepNames, fmtTime } from "./util.js";

const $ = (id) => document.getElementById(id);

// A batch larger than this is applied without animating its packets: it is
// history catching up or a jump of the scrubber, not something to watch.
const animateBatch = 60;
// Idle gaps in a replay are shortened to this (ms of run time).
const maxGap = 1500;

const app = {
  lab: null,
  model: null,
  events: [],
  bySeq: new Map(),
  lastSeq: 0,
  stream: "connecting", // connecting, history, live, reconnecting, ended
  following: true,
  playing: false,
  speed: 1,
  vt: 0, // the replay clock, in the events' time (ms)
  state: null, // /api/state while live
  errors: 0,
  lastError: "",
  dirty: true,
  renderedAt: 0,
  timing: {}, // performance.now() at milestones of loading, for the benchmarks
  frames: 0,
  litOrder: [],
};
window.ipseclab = app;

function fail(where, e) {
  app.errors++;
  app.lastError = `${where}: ${e && e.message ? e.message : e}`;
  const el = $("errors");
  el.hidden = false;
  el.textContent = `⚠ ${app.errors}`;
  el.title = app.lastError;
  if (window.console) console.warn("ipseclab page:", app.lastError);
}
window.addEventListener("error", (e) => fail("page", e.error || e.message));
window.addEventListener("unhandledrejection", (e) => fail("page", e.reason));

async function main() {
  app.timing.script = performance.now();
  setupBigFont();
  // The events start coming while the lab is fetched; they wait in
  // app.events until the model can take them.
  connect();
  try {
    const early = window.ipseclabEarly && window.ipseclabEarly.lab;
    const r = await (early || fetch("api/lab"));
    if (!r.ok) throw new Error(`GET /api/lab: ${r.status}`);
    app.lab = await r.json();
    app.timing.lab = performance.now();
  } catch (e) {
    fail("lab", e);
    app.lab = { name: "?", nodes: [], links: [], lans: [], connections: [] };
  }
  const lab = app.lab;
  document.title = `${lab.name || "lab"} · ipseclab`;
  $("lab-name").textContent = lab.name || "lab";
  $("mode").textContent = lab.mode === "replay" ? "replay" : "live";
  $("mode").className = "badge mode-" + (lab.mode === "replay" ? "replay" : "live");
  if (lab.seed !== undefined && lab.seed !== null && lab.seed !== "") $("seed").textContent = "seed " + lab.seed;

  app.model = new Model(lab);
  app.topology = new Topology($("topology"), lab, app.model);
  app.inspector = new Inspector($("inspector"));
  // A retransmission's events carry no packet: the inspector falls back to
  // the message it repeats.
  app.ladder = new Ladder($("ladder"), (row) => selectSeqs([row.sent, row.recv].filter(Boolean), row.seq,
    [row.sent, row.recv, row.orig && row.orig.sent, row.orig && row.orig.recv].filter(Boolean)));
  app.list = new EventList($("events"), {
    node: $("f-node"), connection: $("f-conn"), step: $("f-step"), proto: $("f-proto"), q: $("f-search"),
  }, (ev) => app.inspector.show(ev));
  app.list.setOptions(lab, (lab.nodes || []).map((n) => n.name), (lab.connections || []).map((c) => c.name));
  buildSteps();
  setupPlayer();
  $("reset-layout").addEventListener("click", () => app.topology.resetLayout());

  if (lab.mode === "replay") {
    // A replay starts at the beginning and plays; "live" jumps to the end.
    app.following = false;
    app.playing = true;
  }
  pollState();
  requestAnimationFrame(frame);
}

function selectSeqs(seqs, noteSeq, packetSeqs) {
  const seq = seqs[0] || noteSeq;
  const ev = app.bySeq.get(seq);
  if (!ev) return;
  app.inspector.show(ev, seqs, packetSeqs);
  app.list.reveal(seq);
}

// connect follows /api/events. It reads the Server-Sent Events itself, over
// fetch, rather than with EventSource: a recorded run's history is
// thousands of events in one response, and parsing them in one pass per
// chunk costs a fraction of one DOM event per message. It reconnects
// after a cut with Last-Event-ID, as EventSource would.
async function connect() {
  if (app.stream === "connecting") app.stream = "history";
  let lastId = "";
  for (let attempt = 0; ; attempt++) {
    try {
      const headers = lastId ? { "Last-Event-ID": lastId } : {};
      const early = attempt === 0 && !lastId && window.ipseclabEarly && window.ipseclabEarly.events;
      if (early) window.ipseclabEarly.events = null;
      const r = await (early || fetch("api/events", { headers, cache: "no-store" }));
      if (!r.ok || !r.body) throw new Error(`GET /api/events: ${r.status}`);
      if (app.stream === "reconnecting") app.stream = app.sawLive ? "live" : "history";
      attempt = 0;
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        const cut = buf.lastIndexOf("\n\n");
        if (cut < 0) continue;
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        lastId = parseBlock(block, lastId);
        if (app.stream === "ended") {
          reader.cancel().catch(() => {});
          return;
        }
      }
    } catch (e) {
      // a cut, or the server is gone: try again below
    }
    if (app.stream === "ended") return;
    app.stream = "reconnecting";
    app.dirty = true;
    await new Promise((res) => setTimeout(res, Math.min(1000 * (attempt + 1), 5000)));
  }
}

// parseBlock takes whole SSE messages ("id: / event: / data:" lines, a
// blank line between messages) and returns the last id seen.
function parseBlock(block, lastId) {
  return timed("parseMs", () => parseMessages(block, lastId));
}

function parseMessages(block, lastId) {
  const datas = [];
  const ids = [];
  let type = "message", data = "", id = null;
  // One pass over the lines; a blank line ends a message.
  const lines = block.split("\n");
  lines.push("");
  for (const line of lines) {
    if (line === "") {
      if (id !== null) lastId = id;
      if (type === "ev" || type === "message") {
        if (data) { datas.push(data); ids.push(id); }
      } else {
        flush(datas, ids);
        if (type === "live") { app.stream = "live"; app.sawLive = true; app.timing.live = performance.now(); }
        else if (type === "end") { app.stream = "ended"; app.timing.end = performance.now(); }
        app.dirty = true;
      }
      type = "message"; data = ""; id = null;
      continue;
    }
    const c = line.charCodeAt(0);
    if (c === 100 /* d */ && line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(line.charCodeAt(5) === 32 ? 6 : 5);
    else if (c === 101 /* e */ && line.startsWith("event:")) type = line.slice(6).trim();
    else if (c === 105 /* i */ && line.startsWith("id:")) id = line.slice(3).trim();
  }
  flush(datas, ids);
  return lastId;
}

// flush parses the data of a run of events at once, and one by one only
// when that fails, so that one bad line costs one event.
function flush(datas, ids) {
  if (!datas.length) return;
  let evs = null;
  try {
    evs = JSON.parse("[" + datas.join(",") + "]");
  } catch (e) {
    evs = datas.map((d, i) => {
      try {
        return JSON.parse(d);
      } catch (err) {
        fail("event " + (ids[i] || "?"), err);
        return null;
      }
    });
  }
  for (const ev of evs) addEvent(ev);
  datas.length = 0;
  ids.length = 0;
  app.dirty = true;
}

function addEvent(ev) {
  if (!ev || typeof ev !== "object" || Array.isArray(ev)) return;
  // A reconnection resumes after Last-Event-ID; anything older is a repeat.
  if (typeof ev.seq === "number" && ev.seq <= app.lastSeq && app.bySeq.has(ev.seq)) return;
  if (typeof ev.seq === "number" && ev.seq > app.lastSeq) app.lastSeq = ev.seq;
  if (!app.events.length) app.timing.firstEvent = performance.now();
  ev._t = Date.parse(ev.time);
  if (!isFinite(ev._t)) ev._t = app.events.length ? app.events[app.events.length - 1]._t : 0;
  app.events.push(ev);
  app.bySeq.set(ev.seq, ev);
}

async function pollState() {
  if (!app.lab || app.lab.mode === "replay") return;
  for (;;) {
    if (app.stream === "ended") {
      app.state = null;
      app.dirty = true;
      return;
    }
    try {
      const r = await fetch("api/state");
      if (r.ok) {
        const st = await r.json();
        app.state = st && (st.nat || st.sas) ? st : null;
        app.dirty = true;
      }
    } catch (e) {
      // the lab may be gone; the events still tell the story
    }
    await new Promise((res) => setTimeout(res, 1500));
  }
}

// apply moves the cursor forward to target, animating when it is a few
// events (live, or played).
// timed runs f and adds its duration to app.timing[name] (the benchmarks
// report the page's busy time from these).
function timed(name, f) {
  const t0 = performance.now();
  try {
    return f();
  } finally {
    app.timing[name] = (app.timing[name] || 0) + performance.now() - t0;
  }
}

function applyTo(target, animate) {
  timed("applyMs", () => applyEvents(target, animate));
}

function applyEvents(target, animate) {
  const m = app.model;
  const n = target - m.applied;
  if (n <= 0) return;
  const anim = animate && n <= animateBatch;
  for (let i = m.applied; i < target; i++) {
    const ev = app.events[i];
    let fx;
    try {
      fx = m.apply(ev);
    } catch (e) {
      fail(`event #${ev && ev.seq} (${ev && ev.kind})`, e);
      continue;
    }
    if (anim && fx && fx.length) {
      try { app.topology.effects(fx, app.following ? 1 : app.speed); } catch (e) { fail("animation", e); }
    }
  }
  app.vt = app.events[target - 1]._t;
  app.dirty = true;
}

// seek puts the cursor at pos, from the start when going back.
function seek(pos, animateLast) {
  pos = Math.max(0, Math.min(app.events.length, pos));
  if (pos < app.model.applied) app.model.reset();
  // Packets in flight belong to the moment left behind.
  if (Math.abs(pos - app.model.applied) > 1) app.topology.clearAnimations();
  if (animateLast && pos > 0 && pos - app.model.applied === 1) applyTo(pos, true);
  else applyTo(pos, false);
  if (pos === 0) app.vt = app.events.length ? app.events[0]._t : 0;
  app.dirty = true;
}

let lastFrame = 0;
function frame(t) {
  const dt = lastFrame ? Math.min(t - lastFrame, 250) : 0;
  lastFrame = t;
  app.frames++;
  try {
    const total = app.events.length;
    if (app.following) {
      applyTo(total, app.stream !== "history" && app.stream !== "connecting");
    } else if (app.playing && total) {
      if (app.model.applied === 0 && !app.vt) app.vt = app.events[0]._t;
      app.vt += dt * app.speed;
      let i = app.model.applied;
      if (i < total && app.events[i]._t - app.vt > maxGap) app.vt = app.events[i]._t - maxGap;
      while (i < total && app.events[i]._t <= app.vt) i++;
      if (i > app.model.applied) applyTo(i, true);
      if (app.model.applied >= total) {
        if (app.stream === "ended") app.playing = false;
        else if (app.lab.mode !== "replay") app.following = true; // caught up with a live run: follow it
        // (a replay still arriving: play on as it comes)
        app.dirty = true;
      }
    }
    app.model.ended = app.stream === "ended" && app.model.applied === total;
    if (app.dirty) {
      app.dirty = false;
      render();
    }
  } catch (e) {
    fail("frame", e);
  }
  requestAnimationFrame(frame);
}

function render() {
  timed("renderMs", renderViews);
}

function renderViews() {
  const m = app.model;
  const total = app.events.length;
  const t0 = total ? app.events[0]._t : 0;
  const guard = (what, f) => { try { f(); } catch (e) { fail(what, e); } };
  guard("steps", renderSteps);
  guard("topology", () => app.topology.render(app.following ? app.state : null));
  guard("ladder", () => app.ladder.render(m));
  guard("events", () => {
    // Connections the lab file does not name (a recording without its
    // lab) join the filter as they appear.
    if (m.conns.size !== app.connsSeen) {
      app.connsSeen = m.conns.size;
      const names = (app.lab.connections || []).map((c) => c.name);
      for (const n of m.conns.keys()) if (n && !names.includes(n)) names.push(n);
      const nodes = (app.lab.nodes || []).map((x) => x.name);
      app.list.setOptions(app.lab, nodes, names);
    }
    app.list.update(app.events, m.applied, t0);
  });
  guard("player", () => {
    const sc = $("scrub");
    sc.max = String(total);
    sc.value = String(m.applied);
    const at = m.applied ? app.events[m.applied - 1]._t - t0 : 0;
    $("position").textContent = `${m.applied} / ${total} · ${fmtTime(at)}`;
    $("play").textContent = app.playing || app.following ? "❚❚" : "▶";
    $("play").title = app.playing || app.following ? "pause" : "play";
    $("live").classList.toggle("on", app.following);
    const st = $("stream");
    st.textContent = app.following ? app.stream : app.playing ? "playing" : "paused";
    st.className = "badge stream-" + st.textContent;
    const tail = total - m.applied;
    $("behind").textContent = tail > 0 && !app.playing ? `${tail} newer` : "";
    document.body.dataset.applied = String(m.applied);
    document.body.dataset.total = String(total);
    document.body.dataset.stream = app.stream;
  });
  if (app.stream === "ended" && m.applied === total && !app.renderedAt) app.renderedAt = performance.now();
}

function buildSteps() {
  const ol = $("steps");
  ol.replaceChildren(...[1, 2, 3, 4, 5].map((i) => h("li", { class: "step", "data-step": i }, h("span", { class: "num" }, String(i)), h("span", { class: "title" }, stepNames[i]))));
}

function renderSteps() {
  const m = app.model;
  for (const li of $("steps").children) {
    const i = Number(li.dataset.step);
    const lit = m.stepFirst[i] > 0;
    // litOrder keeps the order in which the steps first lit, for a teacher's
    // eye and for the tests; going back in time does not rewrite it.
    if (lit && !app.litOrder.includes(i)) app.litOrder.push(i);
    li.classList.toggle("lit", lit);
    li.classList.toggle("current", lit && m.currentStep === i);
    li.classList.toggle("failed", m.stepFailed[i]);
    if (lit) li.dataset.firstSeq = String(m.stepFirst[i]);
    else delete li.dataset.firstSeq;
  }
}

function setupPlayer() {
  const pause = () => { app.following = false; app.playing = false; app.dirty = true; };
  $("play").addEventListener("click", () => {
    if (app.playing || app.following) return pause();
    if (app.model.applied >= app.events.length) {
      if (app.stream === "ended" || app.lab.mode === "replay") seek(0);
      else { app.following = true; app.dirty = true; return; }
    }
    app.vt = app.model.applied ? app.events[app.model.applied - 1]._t : app.events.length ? app.events[0]._t : 0;
    app.playing = true;
    app.dirty = true;
  });
  $("start").addEventListener("click", () => { pause(); seek(0); });
  $("back").addEventListener("click", () => {
    pause();
    // back to the previous event the list shows
    let j = app.model.applied - 2;
    while (j >= 0 && !app.list.passes(app.events[j])) j--;
    seek(j + 1);
  });
  $("fwd").addEventListener("click", () => {
    pause();
    let j = app.model.applied;
    while (j < app.events.length && !app.list.passes(app.events[j])) j++;
    if (j < app.events.length) {
      seek(j);
      seek(j + 1, true);
    }
  });
  $("live").addEventListener("click", () => {
    app.playing = false;
    if (app.stream === "ended" || app.lab.mode === "replay") { seek(app.events.length); app.following = true; }
    else app.following = true;
    app.dirty = true;
  });
  $("speed").addEventListener("change", (e) => { app.speed = Number(e.target.value) || 1; app.dirty = true; });
  $("scrub").addEventListener("input", (e) => { pause(); seek(Number(e.target.value)); });
  document.addEventListener("keydown", (e) => {
    // Keys typed into the filters, and Space on a focused button (which
    // presses it already), are not shortcuts.
    if (e.target && ["INPUT", "SELECT", "BUTTON", "TEXTAREA"].includes(e.target.tagName)) return;
    if (e.key === " ") { e.preventDefault(); $("play").click(); }
    else if (e.key === "ArrowRight" && e.altKey) $("fwd").click();
    else if (e.key === "ArrowLeft" && e.altKey) $("back").click();
  });
}

function setupBigFont() {
  const key = "ipseclab.bigfont";
  const apply = (on) => {
    document.body.classList.toggle("big", on);
    document.documentElement.classList.toggle("big", on);
    $("big").setAttribute("aria-pressed", on ? "true" : "false");
    if (app.ladder) { app.ladder.rh = 0; app.ladder.lastSig = ""; app.list.rh = 0; app.list.sig = ""; app.dirty = true; }
  };
  let on = false;
  try { on = localStorage.getItem(key) === "1"; } catch (e) { on = false; }
  apply(on);
  $("big").addEventListener("click", () => {
    on = !document.body.classList.contains("big");
    try { localStorage.setItem(key, on ? "1" : "0"); } catch (e) { /* private mode */ }
    apply(on);
  });
}

main().catch((e) => fail("start", e));
