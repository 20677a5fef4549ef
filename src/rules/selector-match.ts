/**
 * Which events and endpoints a checked selection (selector.ts) lets through to its rule.
 *
 * `states` is matched against the event's endpoint, which for a closed event is the state the
 * endpoint was last known in; a state-changed event also matches by the state it left. A rule
 * that selects states is so told of each stay of an endpoint in them from its start (opened in
 * one, or changed into one) to its end (changed out of them, or closed in one). Protocol, ports
 * and addresses do not change over an endpoint's life: whatever it was selected by at opened,
 * its closed is selected by too.
 */
import type { Endpoint, TcpState } from "../model/endpoint.ts";
import type { EndpointEvent } from "../monitor/events.ts";
import { isLoopback, isPrivate, isUnspecified, parseIP } from "../net/address.ts";
import type { AddressClass, Selection, Selector } from "./selector.ts";

interface Compiled {
  protocols: ReadonlySet<string> | null;
  states: ReadonlySet<string> | null;
  localPorts: ReadonlySet<number> | null;
  remotePorts: ReadonlySet<number> | null;
  remote: ReadonlySet<AddressClass> | null;
}

export interface SelectionMatcher {
  event(e: EndpointEvent): boolean;
  endpoint(ep: Endpoint): boolean;
}

/** The class of a remote address, as the isPrivate and isLoopback helpers judge it. */
export function addressClass(address: string): AddressClass {
  // Parsed once for the three questions; what is not an address is nowhere private.
  const ip = parseIP(address);
  if (ip === null) return "public";
  if (isUnspecified(ip)) return "unspecified";
  if (isLoopback(ip)) return "loopback";
  return isPrivate(ip) ? "private" : "public";
}

function compileOne(s: Selector): Compiled {
  const set = <T>(list: readonly T[] | undefined) => (list === undefined ? null : new Set(list));
  return { protocols: set(s.protocols), states: set(s.states), localPorts: set(s.localPorts), remotePorts: set(s.remotePorts), remote: set(s.remote) };
}

function matches(c: Compiled, ep: Endpoint, left: TcpState | null | undefined): boolean {
  if (c.protocols && !c.protocols.has(ep.protocol)) return false;
  if (c.localPorts && !c.localPorts.has(ep.localPort)) return false;
  if (c.remotePorts && !c.remotePorts.has(ep.remotePort)) return false;
  if (c.states && !(ep.state !== null && c.states.has(ep.state)) && !(left != null && c.states.has(left))) return false;
  if (c.remote) {
    const kind = addressClass(ep.remoteAddress);
    // isPrivate counts loopback addresses as private; so does "private" here.
    if (!c.remote.has(kind) && !(kind === "loopback" && c.remote.has("private"))) return false;
  }
  return true;
}

const EVERYTHING: SelectionMatcher = { event: () => true, endpoint: () => true };

export function selectionMatcher(selection: Selection): SelectionMatcher {
  if (selection.selectors === null) return EVERYTHING;
  const compiled = selection.selectors.map(compileOne);
  return {
    event: (e) => compiled.some((c) => matches(c, e.endpoint, e.type === "state-changed" ? e.previousState : null)),
    endpoint: (ep) => compiled.some((c) => matches(c, ep, null)),
  };
}
