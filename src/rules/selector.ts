/**
 * A rule's `select`: which events (and which endpoints of start and periodic) it is given. The
 * guest works it out once at load and hands it over as plain data (guest-prelude.ts); the host
 * checks that data here, field by field, before routing anything by it. Nothing the guest wrote
 * is run or trusted: a value that is not what the field takes refuses the rule, naming the field.
 */
import { TCP_STATES, type Protocol, type TcpState } from "../model/endpoint.ts";

export const ADDRESS_CLASSES = ["public", "private", "loopback", "unspecified"] as const;
export type AddressClass = (typeof ADDRESS_CLASSES)[number];

/** One selector: an endpoint matches when it matches every field given. */
export interface Selector {
  protocols?: Protocol[];
  states?: TcpState[];
  localPorts?: number[];
  remotePorts?: number[];
  remote?: AddressClass[];
}

/** The checked selection: any of the selectors; null when the rule selects everything. */
export interface Selection {
  selectors: Selector[] | null;
  /** The same selection gives the same key: rules with one key share one filtered batch. */
  key: string;
}

export const MAX_SELECTORS = 64;
export const MAX_FIELD_VALUES = 1024;

const PROTOCOLS: readonly string[] = ["tcp", "udp"];
const FIELDS = ["protocols", "states", "localPorts", "remotePorts", "remote"] as const;
type Field = (typeof FIELDS)[number];

export const SELECT_ALL: Selection = { selectors: null, key: "*" };

class SelectProblem extends Error {}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The guest writes what is not data as {"$not": "what it is"} (guest-prelude.ts). */
function notData(v: unknown): string | null {
  if (!isPlainObject(v) || Object.keys(v).length !== 1 || typeof v.$not !== "string") return null;
  // Shown to people: printable and short, whatever the guest wrote there.
  return v.$not.slice(0, 60).replace(/[^\x20-\x7e]/g, "?");
}

/** What a value is, for a message: short, and never the value's own text at length. */
function shown(v: unknown): string {
  if (typeof v === "string") return v.length > 40 ? `${JSON.stringify(v.slice(0, 40))}…` : JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  if (Array.isArray(v)) return `a list of ${v.length} values`;
  if (typeof v === "object") return notData(v) ?? "an object";
  return `a ${typeof v}`;
}

function listOf<T>(where: string, raw: unknown, check: (v: unknown, at: string) => T): T[] {
  const said = notData(raw);
  if (said !== null && said.startsWith("a list")) throw new SelectProblem(`${where}: expected one value or a list of at most ${MAX_FIELD_VALUES}, not ${said}`);
  const values = Array.isArray(raw) ? raw : [raw];
  if (values.length > MAX_FIELD_VALUES) throw new SelectProblem(`${where}: at most ${MAX_FIELD_VALUES} values, not ${values.length}`);
  const out: T[] = [];
  values.forEach((v, i) => out.push(check(v, Array.isArray(raw) ? `${where}[${i}]` : where)));
  // Sorted and without repeats: equal selections then have equal keys.
  return [...new Set(out)].sort();
}

function oneOf<T extends string>(names: readonly string[], what: string) {
  return (v: unknown, at: string): T => {
    if (typeof v !== "string" || !names.includes(v)) throw new SelectProblem(`${at}: expected ${what} (${names.join(", ")}), not ${shown(v)}`);
    return v as T;
  };
}

function port(v: unknown, at: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 65535) {
    throw new SelectProblem(`${at}: expected a port, a whole number from 0 to 65535, not ${shown(v)}`);
  }
  return v;
}

const CHECKS: Record<Field, (where: string, raw: unknown) => unknown[]> = {
  protocols: (w, raw) => listOf(w, raw, oneOf<Protocol>(PROTOCOLS, "a protocol")),
  states: (w, raw) => listOf(w, raw, oneOf<TcpState>(TCP_STATES, "a TCP state")),
  localPorts: (w, raw) => listOf(w, raw, port).sort((a, b) => a - b),
  remotePorts: (w, raw) => listOf(w, raw, port).sort((a, b) => a - b),
  remote: (w, raw) => listOf(w, raw, oneOf<AddressClass>(ADDRESS_CLASSES, "an address class")),
};

function checkSelector(raw: unknown, where: string): Selector {
  if (!isPlainObject(raw) || notData(raw) !== null) {
    throw new SelectProblem(`${where}: expected a selector, an object of ${FIELDS.join(", ")}, not ${shown(raw)}`);
  }
  const out: Record<string, unknown[]> = {};
  const keys = Object.keys(raw);
  if (keys.length > FIELDS.length) throw new SelectProblem(`${where}: a selector has at most the fields ${FIELDS.join(", ")}, not ${keys.length}`);
  for (const key of keys) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      throw new SelectProblem(`${where}: unknown field ${shown(key)}; a selector has ${FIELDS.join(", ")}`);
    }
    out[key] = CHECKS[key as Field](`${where}.${key}`, raw[key]);
  }
  // Fields in one order, whatever order the rule wrote them in.
  const ordered: Record<string, unknown[]> = {};
  for (const f of FIELDS) if (out[f] !== undefined) ordered[f] = out[f];
  return ordered as Selector;
}

/**
 * Checks the guest's `select` data: undefined or null (no select) selects everything; a selector
 * or a list of them. Returns the checked selection, or one line naming the field that is wrong.
 */
export function checkSelection(raw: unknown): Selection | { problem: string } {
  if (raw === undefined || raw === null) return SELECT_ALL;
  try {
    let selectors: Selector[];
    const said = notData(raw);
    if (said !== null && said.startsWith("a list")) throw new SelectProblem(`select: at most ${MAX_SELECTORS} selectors, not ${said}`);
    if (Array.isArray(raw)) {
      if (raw.length > MAX_SELECTORS) throw new SelectProblem(`select: at most ${MAX_SELECTORS} selectors, not ${raw.length}`);
      selectors = raw.map((s, i) => checkSelector(s, `select[${i}]`));
    } else {
      selectors = [checkSelector(raw, "select")];
    }
    return { selectors, key: JSON.stringify(selectors) };
  } catch (err) {
    if (err instanceof SelectProblem) return { problem: err.message };
    throw err;
  }
}
