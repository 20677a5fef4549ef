/**
 * The shared "close this connection" action, used by the live view, `close` and rules. It never
 * throws for the expected outcomes: closed, already gone, or refused with a reason.
 */
import type { CloseMethod, SocketEngine } from "../engine/types.ts";
import type { Endpoint } from "../model/endpoint.ts";
import type { AuditLog } from "./audit-log.ts";

export interface ActionOutcome {
  ok: boolean;
  /** closed | gone | failed | unsupported, or for processes: terminated | killed | gone | failed. */
  result: string;
  message: string;
}

export interface ActionContext {
  /** Who asked: "cli", "live-view", or a rule's name. */
  requestedBy: string;
  /** Why, for the audit log. */
  reason?: string;
  /** Where the action is recorded; every action taken through here is, when one is given. */
  audit?: AuditLog;
  method?: CloseMethod;
}

export function closeEndpoint(engine: SocketEngine, ep: Endpoint, ctx: ActionContext): ActionOutcome {
  const outcome = attemptClose(engine, ep, ctx);
  ctx.audit?.append({
    action: "close",
    endpoint: ep,
    reason: ctx.reason ?? "",
    requestedBy: ctx.requestedBy,
    outcome: outcome.result,
    message: outcome.message,
  });
  return outcome;
}

function attemptClose(engine: SocketEngine, ep: Endpoint, ctx: ActionContext): ActionOutcome {
  const what = endpointLabel(ep);
  if (!engine.destroy) return { ok: false, result: "unsupported", message: `cannot close ${what}: the ${engine.name} engine cannot close sockets` };
  let r;
  try {
    r = engine.destroy(ep, ctx.method ?? "auto");
  } catch (err) {
    return { ok: false, result: "failed", message: `cannot close ${what}: ${(err as Error).message}` };
  }
  if (r.outcome === "closed") return { ok: true, result: "closed", message: `closed ${what}` };
  // Already gone is what the user wanted; it is reported as such, not as a failure.
  if (r.outcome === "gone") return { ok: true, result: "gone", message: `${what} was already gone` };
  return { ok: false, result: "failed", message: `cannot close ${what}: ${r.reason}` };
}

/** An endpoint as messages name it: protocol, both ends, and its process. */
export function endpointLabel(ep: Endpoint): string {
  const host = (a: string, p: number) => (ep.family === 6 ? `[${a}]:${p}` : `${a}:${p}`);
  const owner = ep.process ? ` (${ep.process.name}, pid ${ep.process.pid})` : "";
  return `${ep.protocol} ${host(ep.localAddress, ep.localPort)} -> ${host(ep.remoteAddress, ep.remotePort)}${owner}`;
}
