// The same rule as plain JavaScript in the host: the plugin file itself, imported by Bun, with the
// module "sockwarden" supplied by a runtime plugin (a rule only takes defineRule from it, which
// returns its argument). The handler is called on the very event objects the sandbox is fed,
// with an `act` that records what the rule asks for, as the sandbox's dispatcher does.
import { plugin } from "bun";
import path from "node:path";
import type { EndpointEvent } from "../../src/monitor/events.ts";

export interface HostRule {
  name: string;
  on?: string | readonly string[];
  options?: Record<string, unknown>;
  handle?: (event: EndpointEvent, act: HostActions, ctx: { options: Record<string, unknown>; now: number }) => void;
}

export interface HostActions {
  log(message: string): void;
  alert(message: string, severity?: string): void;
  close(endpoint: unknown, reason: string): void;
  kill(process: unknown, reason: string): void;
}

let registered = false;

function registerApiModule(): void {
  if (registered) return;
  registered = true;
  // The pure helpers are not needed by smtp-guard; any rule that calls one fails loudly here.
  const missing = (name: string) => () => {
    throw new Error(`${name} is not provided to host-run rules in the benchmark`);
  };
  plugin({
    name: "sockwarden-bench-api",
    setup(build) {
      build.module("sockwarden", () => ({
        loader: "object",
        exports: {
          defineRule: (rule: unknown) => rule,
          inCidr: missing("inCidr"),
          isPrivate: missing("isPrivate"),
          isLoopback: missing("isLoopback"),
          portName: missing("portName"),
          glob: missing("glob"),
        },
      }));
    },
  });
}

/** Imports a rule file (e.g. plugins/smtp-guard.ts) as an ordinary module of this process. */
export async function importHostRule(file: string): Promise<HostRule> {
  registerApiModule();
  const mod = (await import(path.resolve(file))) as { default?: HostRule };
  const rule = mod.default;
  if (!rule || typeof rule !== "object" || typeof rule.handle !== "function") throw new Error(`${file}: no rule with a handle function`);
  return rule;
}

export interface HostRun {
  ms: number;
  /** Handler calls (events of the subscribed types). */
  calls: number;
  closes: number;
  actions: number;
}

/**
 * Runs the handler over `events` the way the sandbox's dispatcher does: only subscribed types, a
 * fresh context per event, actions recorded as rows. Nothing is encoded, copied or checked.
 */
export function runHostRule(rule: HostRule, events: readonly EndpointEvent[], configured: Record<string, unknown> = {}): HostRun {
  const on = new Set<string>(rule.on === undefined ? ["opened", "closed", "state-changed"] : typeof rule.on === "string" ? [rule.on] : rule.on);
  const options = { ...rule.options, ...configured };
  let out: unknown[][] = [];
  let closes = 0;
  let actions = 0;
  const act: HostActions = {
    log: (message) => void out.push(["log", String(message)]),
    alert: (message, severity) => void out.push(["alert", String(message), severity ?? "warning"]),
    close: (endpoint, reason) => void out.push(["close", String(reason), endpoint]),
    kill: (process, reason) => void out.push(["kill", String(reason), process]),
  };
  const handle = rule.handle!;
  const t0 = performance.now();
  let calls = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (!on.has(e.type)) continue;
    calls++;
    handle.call(rule, e, act, { options, now: e.time });
    if (out.length > 0) {
      actions += out.length;
      for (const a of out) if (a[0] === "close") closes++;
      out = [];
    }
  }
  const ms = performance.now() - t0;
  return { ms, calls, closes, actions };
}
