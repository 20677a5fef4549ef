/**
 * What a rule asked for, checked (action-rows.ts) and resolved against what sockwarden actually
 * saw: a close names an endpoint sockwarden reported, a kill a process holding a known endpoint.
 * The guest's references and claims are only hints.
 */
import type { Endpoint } from "../model/endpoint.ts";
import type { ProcessInfo } from "../model/process.ts";
import type { EndpointEvent } from "../monitor/events.ts";
import { checkActionRows, type EndpointClaim } from "./action-rows.ts";
import type { RuleAction } from "../model/rule-action.ts";

/** `known`: the endpoints sockwarden knows now, by endpointKey (what a close may target). */
export function resolveActions(
  name: string, actions: unknown, refs: readonly Endpoint[], events: readonly EndpointEvent[] | undefined, known: ReadonlyMap<string, Endpoint>,
): { out: RuleAction[]; refused: string[] } {
  const out: RuleAction[] = [];
  const checked = checkActionRows(actions, refs.length, events ? events.length : 1);
  const refused = [...checked.refused];
  for (const a of checked.rows) {
    const reason = a.text;
    if (a.kind === "log") out.push({ rule: name, action: "log", reason });
    else if (a.kind === "alert") out.push({ rule: name, action: "alert", reason, severity: a.severity });
    else if (a.kind === "close") {
      const ep = resolveEndpoint(a.ref, a.claim, refs, events, known);
      if (!ep) {
        refused.push(`close refused: not an endpoint sockwarden reported (${reason})`);
        continue;
      }
      const seq = a.ref >= 0 && events ? events[a.ref]?.seq : undefined;
      out.push({ rule: name, action: "close", reason, endpoint: ep, seq });
    } else {
      const proc = findProcess(a.pid, refs, known);
      if (!proc) {
        refused.push(`kill refused: ${a.pid} is not the PID of a process holding a known endpoint (${reason})`);
        continue;
      }
      out.push({ rule: name, action: "kill", reason, process: proc, pid: proc.pid });
    }
  }
  return { out, refused };
}

function resolveEndpoint(
  ref: number, claim: EndpointClaim, refs: readonly Endpoint[], events: readonly EndpointEvent[] | undefined, known: ReadonlyMap<string, Endpoint>,
): Endpoint | null {
  const { protocol, localAddress: la, localPort: lp, remoteAddress: ra, remotePort: rp, cookie } = claim;
  if (ref >= 0 && ref < refs.length) {
    const ep = refs[ref]!;
    // The guest's reference is only a hint: it must describe the same socket in full (a
    // listener and its accepted connections share the local address), and one that is open.
    const same = ep.protocol === protocol && ep.localAddress === la && ep.localPort === lp && ep.remoteAddress === ra && ep.remotePort === rp && ep.cookie === cookie;
    if (same && events?.[ref]?.type !== "closed") return ep;
  }
  if (cookie !== null) {
    const byCookie = known.get(cookie);
    if (byCookie && byCookie.localAddress === la && byCookie.localPort === lp) return byCookie;
  }
  for (const ep of known.values()) {
    if (ep.protocol === protocol && ep.localAddress === la && ep.localPort === lp && ep.remoteAddress === ra && ep.remotePort === rp) return ep;
  }
  return null;
}

function findProcess(pid: number, refs: readonly Endpoint[], known: ReadonlyMap<string, Endpoint>): ProcessInfo | null {
  for (const ep of refs) if (ep.process?.pid === pid) return ep.process;
  for (const ep of known.values()) if (ep.process?.pid === pid) return ep.process;
  return null;
}
