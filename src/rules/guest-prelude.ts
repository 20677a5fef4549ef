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

  // The shape of the rule's option defaults (rule-options.ts's OptionType), for the host to
  // check configured values against, written as JSON text by hand from captured built-ins. Bounded
  // in depth, values and size: it is only ever a description, and a default that holds itself has
  // no end.
  const keysOf = Object.keys, create = Object.create, defineProp = Object.defineProperty, objectProto = Object.prototype;
  const tagOf = Object.prototype.toString, sliceStr = String.prototype.slice, join = Array.prototype.join;
  const OPTION_DEPTH = 16, OPTION_VALUES = 10000, OPTION_KEY = 1024, OPTION_TEXT = 1048576, OPTION_LIST = 100000;
  const TOO_LARGE = "the default options are too large to check settings against: more than " + OPTION_TEXT + " characters to describe";
  // A string primitive has no toJSON to call: this stringify cannot be hooked.
  function quoted(s) { return stringify(toStr(s)); }
  function put(o, k, v) {
    const d = create(null);
    d.value = v; d.writable = true; d.enumerable = true; d.configurable = true;
    defineProp(o, k, d);
  }
  // A default as a message shows it: short, and never through a hook of the rule's.
  function shownDefault(v, depth) {
    const type = typeof v;
    if (type === "string") return v.length > 24 ? quoted(apply(sliceStr, v, [0, 24])) + "\u2026" : quoted(v);
    if (type === "number" || type === "boolean" || v === null || v === undefined) return toStr(v);
    if (isArray(v)) {
      if (depth > 0) return "[\u2026]";
      const n = v.length;
      let s = "[";
      for (let i = 0; i < n && i < 3; i++) s += (i ? ", " : "") + shownDefault(v[i], depth + 1);
      return s + (n > 3 ? ", \u2026]" : "]");
    }
    return type === "object" ? "{\u2026}" : "a " + type;
  }
  function describeOptions(defaults) {
    let values = 0;
    function describe(v, depth, shown) {
      if (depth > OPTION_DEPTH) throw new RangeError("the default options nest deeper than " + OPTION_DEPTH + " levels (or hold themselves)");
      if (++values > OPTION_VALUES) throw new RangeError("the default options are too large to check settings against: more than " + OPTION_VALUES + " values");
      const type = typeof v;
      let out, leaf = true;
      if (type === "number" || type === "string" || type === "boolean") out = '{"t":"' + type + '"';
      else if (v === null || v === undefined) out = '{"t":"any"';
      else if (isArray(v)) {
        const n = v.length;
        if (!(n <= OPTION_LIST)) throw new RangeError("a default list holds more than " + OPTION_LIST + " elements");
        // Elements are described by their distinct types: a long list of strings is one type.
        const distinct = create(null), of = [];
        let size = 0;
        for (let i = 0; i < n; i++) {
          const before = values;
          const element = describe(v[i], depth + 1, false);
          if (distinct[element] === true) { values = before; continue; }
          distinct[element] = true;
          put(of, of.length, element);
          if ((size += element.length) > OPTION_TEXT) throw new RangeError(TOO_LARGE);
        }
        out = '{"t":"array","of":[' + apply(join, of, [","]) + "]";
      } else if (type === "object") {
        const proto = protoOf(v);
        if (proto !== objectProto && proto !== null) {
          const tag = toStr(apply(tagOf, v, []));
          return '{"t":"fixed","d":' + quoted("a " + apply(sliceStr, tag, [8, tag.length - 1]) + " object") + "}";
        }
        const keys = keysOf(v);
        leaf = false;
        if (keys.length === 0) out = depth === 0 ? '{"t":"table","keys":[]' : '{"t":"table","keys":null';
        else {
          const list = [];
          let size = 0;
          for (let i = 0; i < keys.length; i++) {
            const k = toStr(keys[i]);
            if (k.length > OPTION_KEY) throw new RangeError("a default option's name is longer than " + OPTION_KEY + " characters");
            const entry = "[" + quoted(k) + "," + describe(v[k], depth + 1, true) + "]";
            put(list, i, entry);
            if ((size += entry.length) > OPTION_TEXT) throw new RangeError(TOO_LARGE);
          }
          out = '{"t":"table","keys":[' + apply(join, list, [","]) + "]";
        }
      } else return '{"t":"fixed","d":' + quoted("a " + type) + "}";
      if (shown && leaf) {
        let d = shownDefault(v, 0);
        if (d.length > 120) d = apply(sliceStr, d, [0, 119]) + "\u2026";
        out += ',"d":' + quoted(d);
      }
      out += "}";
      if (out.length > OPTION_TEXT) throw new RangeError(TOO_LARGE);
      return out;
    }
    return describe(defaults, 0, false);
  }

  // The rule's select, worked out once and copied as JSON text for the host to check: each value
  // read once, written from captured built-ins. What is not data (NaN, a function, a class's
  // instance, a list too long to walk) is written as {"$not": "what it is"}, for the host to refuse
  // by name; the host bounds and checks everything again.
  const SELECT_LIST = 1024, SELECT_DEPTH = 4, SELECT_VALUES = 400000, SELECT_KEYS = 16, SELECT_TEXT = 64;
  function notData(what) {
    // A length or a tag the rule made up can be any text: only a message's worth goes over.
    const s = toStr(what);
    return '{"$not":' + quoted(s.length > 80 ? apply(sliceStr, s, [0, 80]) : s) + "}";
  }
  function copySelect(v) {
    let values = 0;
    function copy(v, depth) {
      if (++values > SELECT_VALUES) throw new RangeError("select is too large: more than " + SELECT_VALUES + " values");
      const type = typeof v;
      if (type === "string") return v.length > SELECT_TEXT ? notData("a string of " + v.length + " characters") : quoted(v);
      if (type === "number") return v === v && v !== 1 / 0 && v !== -1 / 0 ? toStr(v) : notData(toStr(v));
      if (type === "boolean" || v === null) return toStr(v);
      if (v === undefined) return notData("undefined");
      if (type !== "object") return notData("a " + type);
      if (depth >= SELECT_DEPTH) return notData("a value nested " + SELECT_DEPTH + " levels deep");
      if (isArray(v)) {
        const n = v.length;
        if (!(n <= SELECT_LIST)) return notData("a list of " + toStr(n) + " elements");
        let s = "[";
        for (let i = 0; i < n; i++) s += (i ? "," : "") + copy(v[i], depth + 1);
        return s + "]";
      }
      const proto = protoOf(v);
      if (proto !== objectProto && proto !== null) {
        const tag = toStr(apply(tagOf, v, []));
        return notData("a " + apply(sliceStr, tag, [8, tag.length - 1]) + " object");
      }
      const keys = keysOf(v);
      if (keys.length > SELECT_KEYS) return notData("an object of " + keys.length + " fields");
      let s = "{", first = true;
      for (let i = 0; i < keys.length; i++) {
        const k = toStr(keys[i]);
        const x = v[k];
        // An optional field given as undefined is a field left out.
        if (x === undefined) continue;
        s += (first ? "" : ",") + quoted(k.length > SELECT_TEXT ? apply(sliceStr, k, [0, SELECT_TEXT]) : k) + ":" + copy(x, depth + 1);
        first = false;
      }
      return s + "}";
    }
    return copy(v, 0);
  }

  return {
    setRule(def, configured) {
      if (def === null || typeof def !== "object") throw new TypeError("the rule's default export must be defineRule({...})");
      const name = def.name;
      if (typeof name !== "string" || name.length === 0 || name.length > 100) throw new TypeError("a rule needs a name: a string of 1 to 100 characters");
      const hooks = ["start", "handle", "periodic"];
      for (let i = 0; i < hooks.length; i++) {
        const hook = hooks[i];
        if (def[hook] !== undefined && typeof def[hook] !== "function") throw new TypeError(hook + " must be a function");
        const kind = typeof def[hook] === "function" ? protoOf(def[hook]) : null;
        if (kind === deferring[0] || kind === deferring[1] || kind === deferring[2]) {
          throw new TypeError(hook + " must be a plain function: rules run synchronously, so an async or generator " + hook + " would never finish");
        }
      }
      const handles = typeof def.handle === "function", starts = typeof def.start === "function", periodic = typeof def.periodic === "function";
      if (!handles && !periodic && !starts) throw new TypeError("a rule needs handle, periodic or start");
      let on = def.on === undefined ? ["opened", "closed", "state-changed"] : def.on;
      if (typeof on === "string") on = [on];
      if (!isArray(on)) throw new TypeError("on must be an event type or a list of them");
      subscribed = { opened: false, closed: false, "state-changed": false, counters: false };
      for (let i = 0; i < on.length; i++) {
        const t = toStr(on[i]);
        if (apply(indexOf, EVENT_TYPES, [t]) < 0) throw new TypeError("unknown event type " + t + " in on: use opened, closed, state-changed, counters");
        subscribed[t] = true;
      }
      const every = def.every === undefined ? 10 : +def.every;
      if (!(every >= 0.1 && every <= 86400)) throw new RangeError("every must be from 0.1 to 86400 seconds");
      const defaults = def.options === undefined ? {} : def.options;
      if (defaults === null || typeof defaults !== "object" || isArray(defaults)) throw new TypeError("options must be an object of default values");
      // Read once: a getter among the defaults gives one value to the description and the merge.
      const snapshot = {};
      for (const k in defaults) put(snapshot, k, defaults[k]);
      const optionTypes = describeOptions(snapshot);
      const given = parse(configured);
      options = {};
      const own = keysOf(snapshot), set = keysOf(given);
      for (let i = 0; i < own.length; i++) put(options, own[i], snapshot[own[i]]);
      for (let i = 0; i < set.length; i++) put(options, set[i], given[set[i]]);
      // After the options are merged: a selector often takes its ports from them.
      const select = def.select;
      const chosen = typeof select === "function" ? apply(select, def, [options]) : select;
      const selectText = select === undefined ? "null" : copySelect(chosen);
      rule = def;
      let onList = "";
      for (let i = 0; i < EVENT_TYPES.length; i++) if (subscribed[EVENT_TYPES[i]]) onList += (onList ? "," : "") + quoted(EVENT_TYPES[i]);
      // Written by hand from strings, numbers and booleans: a toJSON the rule put on a prototype
      // has nothing to hook into.
      return '{"name":' + quoted(name) + ',"description":' + quoted(def.description === undefined ? "" : text(def.description)) +
        ',"on":[' + onList + '],"every":' + toStr(every) + ',"handle":' + handles + ',"start":' + starts + ',"periodic":' + periodic +
        ',"optionTypes":' + optionTypes + ',"select":' + selectText + "}";
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
