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
  const parse = JSON.parse, stringify = JSON.stringify, toStr = String, apply = Reflect.apply, indexOf = Array.prototype.indexOf;
  const bind = Function.prototype.bind, Buffer = ArrayBuffer;
  const wmGet = WeakMap.prototype.get, wmSet = WeakMap.prototype.set, freeze = Object.freeze;
  const isArray = Array.isArray, hasOwn = Object.prototype.hasOwnProperty, protoOf = Object.getPrototypeOf;
  // Hooks run synchronously: an async or generator hook would lose its work without a word.
  const deferring = [protoOf(async function () {}), protoOf(function* () {}), protoOf(async function* () {})];
  const MAX_ACTIONS = 10000, MAX_TEXT = 4096;
  const EVENT_TYPES = ["opened", "closed", "state-changed", "counters"];
  // Which object stands for which endpoint of the current call, so that a close names the socket
  // the host sent: in a batch, the event being handled and the endpoints of the events before it;
  // in start and periodic, the list. Both start afresh each call, so an object the rule kept from
  // an earlier call cannot point at whatever has its old index now.
  let current = null, currentIndex = -1, seen = [], listRefs = null;
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
    const known = endpoint === current ? currentIndex
      : listRefs !== null ? apply(wmGet, listRefs, [endpoint]) : apply(indexOf, seen, [endpoint]);
    // A copy or a made-up object is described by its fields; the host decides if it is real.
    const fields = [toStr(endpoint.protocol), toStr(endpoint.localAddress), +endpoint.localPort,
      toStr(endpoint.remoteAddress), +endpoint.remotePort, endpoint.cookie == null ? null : toStr(endpoint.cookie)];
    return [known === undefined || known < 0 ? -1 : known, fields];
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

  // The host sends finished objects (guest-payload.ts); an endpoint names its process by index
  // into the payload's process list, so that endpoints of one process share one object.
  function linkProcess(ep, ps) {
    const i = ep.process;
    ep.process = i >= 0 ? ps[i] : null;
    return ep;
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
    const ps = payload.p, list = payload.e;
    current = null; currentIndex = -1; seen = []; listRefs = new WeakMap();
    for (let i = 0; i < list.length; i++) apply(wmSet, listRefs, [linkProcess(list[i], ps), i]);
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
    dispatch(payload, from) {
      index = -1;
      if (from === 0) { seen = []; listRefs = null; }
      const ps = payload.p, events = payload.e;
      // Bound once per call: a direct call costs the interpreter less than apply with a new
      // argument list per event.
      const handle = apply(bind, rule.handle, [rule]);
      for (index = from; index < events.length; index++) {
        const event = events[index];
        if (!subscribed[event.type]) continue;
        const ep = linkProcess(event.endpoint, ps);
        seen[index] = ep;
        current = ep;
        currentIndex = index;
        now = event.time;
        const result = handle(event, act, context());
        if (result !== undefined) settled("handle", result);
      }
      index = -1;
      current = null;
      return stringify(take());
    },
    start(payload, at) { now = at; const list = endpointsOf(payload); settled("start", apply(rule.start, rule, [list, act, context()])); return stringify(take()); },
    periodic(payload, at) { now = at; const list = endpointsOf(payload); settled("periodic", apply(rule.periodic, rule, [list, act, context()])); return stringify(take()); },
    // The host's check that it and this QuickJS agree on the binary format.
    probe(value) { return stringify(value); },
    // Whether the heap has room for a block of this size now; the block is freed on return.
    fits(bytes) { new Buffer(bytes); },
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
