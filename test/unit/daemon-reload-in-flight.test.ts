/**
 * A reload while the sensor's changes are being handled: changes that queued up while the old
 * rules were busy are handed on the moment they finish, still to the old rules, just as the
 * reload swaps them out. What those rules ask for must still be done: the changes will not come
 * again, and the new rules never see them. The engine is scripted (its sensor feed is filled by
 * the test); the rules run as in production, in their own processes; the refresh loop's timers
 * never fire by themselves, so no refresh comes between.
 */
import { describe, expect, test } from "vitest";
import path from "node:path";
import { defaultConfig, type DaemonConfig } from "../../src/daemon/config.ts";
import type { DestroyResult, SocketEngine, SocketTransition, TransitionFeed } from "../../src/engine/types.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { ManualTimers } from "./helpers/manual-timers.ts";
import { daemonBed } from "../support/daemon-bed.ts";
import { endpoint as anEndpoint, namedProcess } from "../support/endpoints.ts";

/**
 * Keeps its rule process busy for a while on every connection it is told of: long on one to
 * port 80 (the reload's new rules load meanwhile), shorter on the others (still being handled
 * when the old rules are swapped out).
 */
const SLOW_RULE = `import { defineRule } from "sockwarden";
export default defineRule({ name: "slow", on: ["opened"], handle(e) {
  const until = Date.now() + (e.endpoint.remotePort === 80 ? 3000 : 1500);
  while (Date.now() < until) {}
} });
`;

class SensedEngine implements SocketEngine {
  readonly name = "sensed";
  readonly sockets = new Map<string, Endpoint>();
  readonly destroyed: Endpoint[] = [];
  private waiting: SocketTransition[] = [];
  private ready: () => void = () => {};

  snapshot() {
    return { endpoints: [...this.sockets.values()], takenAt: Date.now(), source: "sensed", notes: [], unreadableProcesses: 0 };
  }

  get transitions(): () => TransitionFeed {
    return () => ({
      notes: [],
      drain: () => this.waiting.splice(0),
      lost: () => 0,
      onReady: (ready) => (this.ready = ready),
      close: () => {},
    });
  }

  /** A connection the sensor saw open. */
  open(ep: Endpoint): void {
    this.sockets.set(ep.cookie!, ep);
    this.waiting.push({ endpoint: ep, previousState: null, time: Date.now() });
    this.ready();
  }

  destroy(ep: Endpoint): DestroyResult {
    if (!this.sockets.delete(ep.cookie!)) return { outcome: "gone" };
    this.destroyed.push(ep);
    return { outcome: "closed" };
  }

  close(): void {}
}

const bed = daemonBed("sw-reload-in-flight-", { "slow.ts": SLOW_RULE });

function config(sources: string[]): DaemonConfig {
  const c = defaultConfig();
  c.rules.sources = sources;
  c.limits.perRule["smtp-guard"] = 100_000;
  c.sandbox.timeBudgetMs = 20_000;
  return c;
}

const connection = (localPort: number, remotePort: number, name: string) =>
  anEndpoint({
    localPort, remotePort, inode: 50_000 + localPort, cookie: String(localPort),
    process: namedProcess(4000 + localPort, name, { startTime: "2026-01-01T00:00:00.000Z" }), pids: [4000 + localPort],
  });

describe("a reload while events are being handled", () => {
  test("the changes the old rules were handed as they were swapped out are acted on", { timeout: 60_000 }, async () => {
    const engine = new SensedEngine();
    const timers = new ManualTimers();
    const d = bed.make(config(["smtp-guard", path.join(bed.dir, "slow.ts")]), engine, timers);
    await d.start();
    // The old rules are busy with this one while the reload loads the new rules...
    engine.open(connection(41000, 80, "curl"));
    // ...and this one waits for them, to be handed on the moment they are done.
    const smtp = connection(41001, 25, "curl");
    engine.open(smtp);
    await d.reload(config(["smtp-guard"]));
    expect(d.ruleNames).toEqual(["smtp-guard"]);
    await d.idle();
    expect(engine.destroyed.map((e) => e.localPort), "the SMTP connection the old rules were handling is closed").toEqual([41001]);
  });
});
