/**
 * JavaScript evaluated inside each rule's QuickJS context before the rule itself.
 *
 * CONTROL_SOURCE builds the dispatcher the host calls. It captures every built-in it relies on
 * at start, so a rule that later replaces JSON.parse, Array.prototype or Function.prototype.call
 * can only break itself, and it is returned to the host rather than stored on the global object.
 *
 * LOCKDOWN_SOURCE removes code generation from strings (eval, the Function constructors); the
 * host's own evaluation keeps working because QuickJS's eval capability stays in the context.
 *
 * API_MODULE_SOURCE is the module "sockwarden"; the host helpers it exposes are handed over on a
 * temporary global that the module removes as it loads, before any rule code runs.
 */

export const CONTROL_SOURCE = String.raw`(function () {
  "use strict";
  const parse = JSON.parse, stringify = JSON.stringify, toStr = String, apply = Reflect.apply;
  const wmGet = WeakMap.prototype.get, wmSet = WeakMap.prototype.set, freeze = Object.freeze;
  const isArray = Array.isArray, hasOwn = Object.prototype.hasOwnProperty, protoOf = Object.getPrototypeOf;
  // Hooks run synchronously: an async or generator hook would lose its work without a word.
  const deferring = [protoOf(async function () {}), protoOf(function* () {}), protoOf(async function* () {})];
  const MAX_ACTIONS = 10000, MAX_TEXT = 4096;
  const EVENT_TYPES = ["opened", "closed", "state-changed", "counters"];
  // Which object stands for which endpoint of the current call; a new map each call, so an
  // object the rule kept from an earlier call cannot point at whatever has its old index now.
  let refs = new WeakMap();
  let rule = null, options = {}, now = 0, subscribed = { opened: true, closed: true, "state-changed": true, counters: false };
  let out = [], outLen = 0, index = -1;

  function text(value) {
    let s = toStr(value);
    if (s.length > MAX_TEXT) s = s.slice(0, MAX_TEXT - 1) + "\u2026";
    return s;
  }
  function record(item) {
    if (outLen >= MAX_ACTIONS) throw new RangeError("a rule may take at most " + MAX_ACTIONS + " actions per call");
    out[outLen++] = item;
  }
  function ref(endpoint) {
    if (endpoint === null || typeof endpoint !== "object") return [-1, null];
    const known = apply(wmGet, refs, [endpoint]);
    // A copy or a made-up object is described by its fields; the host decides if it is real.
    const fields = [toStr(endpoint.protocol), toStr(endpoint.localAddress), +endpoint.localPort,
      toStr(endpoint.remoteAddress), +endpoint.remotePort, endpoint.cookie == null ? null : toStr(endpoint.cookie)];
    return [known === undefined ? -1 : known, fields];
  }
  const severities = { info: true, warning: true, critical: true };
  const act = freeze({
    log(message) { record(["log", text(message)]); },
    alert(message, severity) {
      const s = severity === undefined ? "warning" : toStr(severity);
      if (!apply(hasOwn, severities, [s])) throw new TypeError("alert severity must be info, warning or critical, not " + s);
      record(["alert", text(message), s]);
    },
    close(endpoint, reason) { const r = ref(endpoint); record(["close", text(reason), r[0], r[1]]); },
    kill(process, reason) {
      const pid = typeof process === "number" ? process : process !== null && typeof process === "object" ? +process.pid : NaN;
      record(["kill", text(reason), pid]);
    },
  });

  // Host rows -> objects. Rows keep the payload small: parsing it is most of a call's cost.
  function procs(rows) {
    const list = [];
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      list[i] = { pid: r[0], name: r[1], path: r[2], cmdline: r[3], uid: r[4], user: r[5], startTime: r[6], ppid: r[7] };
    }
    return list;
  }
  function endpoint(r, o, ps) {
    return { protocol: r[o], family: r[o + 1], localAddress: r[o + 2], localPort: r[o + 3], remoteAddress: r[o + 4],
      remotePort: r[o + 5], state: r[o + 6], inode: r[o + 7], uid: r[o + 8], user: r[o + 9], bytesSent: r[o + 10],
      bytesReceived: r[o + 11], packetsSent: r[o + 12], packetsReceived: r[o + 13],
      process: r[o + 14] < 0 ? null : ps[r[o + 14]], pids: r[o + 15], cookie: r[o + 16] };
  }
  function context() { return { options: options, now: now }; }
  // A hook that returns a promise did part of its work; the rest would never run.
  function settled(hook, result) {
    if (result !== null && (typeof result === "object" || typeof result === "function") && typeof result.then === "function") {
      throw new TypeError(hook + " returned a promise: rules run synchronously, so nothing after an await or in a then() runs");
    }
  }
  function take() { const a = out; const n = outLen; out = []; outLen = 0; a.length = n; return a; }
  function endpointsOf(payload) {
    const ps = procs(payload.p), rows = payload.e, list = [];
    refs = new WeakMap();
    for (let i = 0; i < rows.length; i++) { const ep = endpoint(rows[i], 0, ps); apply(wmSet, refs, [ep, i]); list[i] = ep; }
    return list;
  }

  return {
    setRule(def, configured) {
      if (def === null || typeof def !== "object") throw new TypeError("the rule's default export must be defineRule({...})");
      const name = def.name;
      if (typeof name !== "string" || name.length === 0 || name.length > 100) throw new TypeError("a rule needs a name: a string of 1 to 100 characters");
      for (const hook of ["start", "handle", "periodic"]) {
        if (def[hook] !== undefined && typeof def[hook] !== "function") throw new TypeError(hook + " must be a function");
        const kind = typeof def[hook] === "function" ? protoOf(def[hook]) : null;
        if (kind === deferring[0] || kind === deferring[1] || kind === deferring[2]) {
          throw new TypeError(hook + " must be a plain function: rules run synchronously, so an async or generator " + hook + " would never finish");
        }
      }
      if (typeof def.handle !== "function" && typeof def.periodic !== "function" && typeof def.start !== "function") {
        throw new TypeError("a rule needs handle, periodic or start");
      }
      let on = def.on === undefined ? ["opened", "closed", "state-changed"] : def.on;
      if (typeof on === "string") on = [on];
      if (!isArray(on)) throw new TypeError("on must be an event type or a list of them");
      subscribed = { opened: false, closed: false, "state-changed": false, counters: false };
      for (let i = 0; i < on.length; i++) {
        const t = toStr(on[i]);
        if (EVENT_TYPES.indexOf(t) < 0) throw new TypeError("unknown event type " + t + " in on: use " + EVENT_TYPES.join(", "));
        subscribed[t] = true;
      }
      const every = def.every === undefined ? 10 : +def.every;
      if (!(every >= 0.1 && every <= 86400)) throw new RangeError("every must be from 0.1 to 86400 seconds");
      const defaults = def.options === undefined ? {} : def.options;
      const given = parse(configured);
      options = {};
      for (const k in defaults) options[k] = defaults[k];
      for (const k in given) options[k] = given[k];
      rule = def;
      return stringify({ name: name, description: def.description === undefined ? "" : text(def.description),
        on: EVENT_TYPES.filter(function (t) { return subscribed[t]; }), every: every,
        handle: typeof def.handle === "function", start: typeof def.start === "function", periodic: typeof def.periodic === "function" });
    },
    // Events from 'from' on; on a throw, index() tells which one failed and actions() what was
    // done before it.
    dispatch(json, from) {
      index = -1;
      if (from === 0) refs = new WeakMap();
      const payload = parse(json), ps = procs(payload.p), rows = payload.e;
      const handle = rule.handle;
      for (index = from; index < rows.length; index++) {
        const r = rows[index];
        const type = r[0];
        if (!subscribed[type]) continue;
        const ep = endpoint(r, 4, ps);
        apply(wmSet, refs, [ep, index]);
        const event = { type: type, seq: r[1], time: r[2], endpoint: ep };
        if (type === "state-changed") event.previousState = r[3];
        else if (type === "counters") event.counters = r[3];
        else if (r[3] === 1) event.shortLived = true;
        now = r[2];
        settled("handle", apply(handle, rule, [event, act, context()]));
      }
      index = -1;
      return stringify(take());
    },
    start(json, at) { now = at; const list = endpointsOf(parse(json)); settled("start", apply(rule.start, rule, [list, act, context()])); return stringify(take()); },
    periodic(json, at) { now = at; const list = endpointsOf(parse(json)); settled("periodic", apply(rule.periodic, rule, [list, act, context()])); return stringify(take()); },
    index() { return index; },
    actions() { return stringify(take()); },
  };
})()`;

export const LOCKDOWN_SOURCE = String.raw`(function () {
  "use strict";
  const deny = function () { throw new TypeError("rules cannot compile code from strings"); };
  const kinds = [function () {}, async function () {}, function* () {}, async function* () {}];
  for (let i = 0; i < kinds.length; i++) {
    Object.defineProperty(Object.getPrototypeOf(kinds[i]), "constructor", { value: deny, writable: false, configurable: false });
  }
  delete globalThis.eval;
  Object.defineProperty(globalThis, "Function", { value: deny, writable: false, configurable: false, enumerable: false });
})()`;

export const HELPERS_GLOBAL = "__sockwarden_helpers";

export const API_MODULE_SOURCE = String.raw`
const h = globalThis.${HELPERS_GLOBAL};
delete globalThis.${HELPERS_GLOBAL};
export function defineRule(rule) { return rule; }
export function inCidr(address, cidr) { return h.inCidr(String(address), String(cidr)); }
export function isPrivate(address) { return h.isPrivate(String(address)); }
export function isLoopback(address) { return h.isLoopback(String(address)); }
export function portName(port, protocol) { return h.portName(Number(port), protocol === undefined ? "tcp" : String(protocol)); }
export function glob(pattern, text) { return h.glob(String(pattern), String(text)); }
`;
