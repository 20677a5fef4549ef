/**
 * What each rule is given: the events of the types it subscribes to that its selection lets
 * through, and, for start and periodic, the endpoints its selection lets through. Rules with the
 * same subscription and selection share one encoding: encoding and copying are much of a call's
 * cost, and a rule should not pay for events it never sees.
 */
import type { Endpoint } from "../model/endpoint.ts";
import type { EndpointEvent } from "../monitor/events.ts";
import { encodeEndpoints, encodeEvents } from "./guest-payload.ts";
import type { PooledRule } from "./runner/rule-pool.ts";
import type { Selection } from "./selector.ts";
import { selectionMatcher, type SelectionMatcher } from "./selector-match.ts";

export interface EncodedGroup {
  subset: EndpointEvent[];
  /** null when nothing is left for these rules: their runners are not called. */
  payload: Uint8Array | null;
}

export interface EncodedList {
  endpoints: readonly Endpoint[];
  payload: Uint8Array;
}

const matchers = new WeakMap<Selection, SelectionMatcher>();

function matcherOf(selection: Selection): SelectionMatcher {
  let m = matchers.get(selection);
  if (!m) matchers.set(selection, (m = selectionMatcher(selection)));
  return m;
}

/** Rules with one key are given the same events. */
export function routeKey(rule: PooledRule): string {
  return `${rule.info.on.join(",")}|${rule.selection.key}`;
}

export function encodeBatch(batch: readonly EndpointEvent[], rules: readonly PooledRule[]): Map<string, EncodedGroup> {
  const encoded = new Map<string, EncodedGroup>();
  for (const rule of rules) {
    const key = routeKey(rule);
    if (encoded.has(key)) continue;
    const types = new Set(rule.info.on);
    const m = matcherOf(rule.selection);
    const subset = batch.filter((e) => types.has(e.type) && m.event(e));
    encoded.set(key, { subset, payload: subset.length ? encodeEvents(subset) : null });
  }
  return encoded;
}

/** The endpoints each rule's start or periodic is shown, each distinct list encoded once. */
export function encodeLists(endpoints: readonly Endpoint[], rules: readonly PooledRule[]): { lists: EncodedList[]; listOf: number[] } {
  const lists: EncodedList[] = [];
  const byKey = new Map<string, number>();
  const listOf = rules.map((rule) => {
    const key = rule.selection.key;
    let i = byKey.get(key);
    if (i === undefined) {
      const m = matcherOf(rule.selection);
      const mine = rule.selection.selectors === null ? endpoints : endpoints.filter((ep) => m.endpoint(ep));
      byKey.set(key, (i = lists.length));
      lists.push({ endpoints: mine, payload: encodeEndpoints(mine) });
    }
    return i;
  });
  return { lists, listOf };
}
