/**
 * `sockwarden run` with a rule that closes every established connection and a webhook receiver
 * on loopback that keeps its connection open: the receiver's end of sockwarden's own connection
 * is refused as protected (audited, told), never closed, and the alerts keep arriving over it.
 * With polling and with the eBPF sensor.
 *
 * Needs root (network namespace, closing sockets) and a built dist/sockwarden.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BackgroundProcess, Netns, requireRoot } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";
import { waitFor } from "./helpers/wait-for.ts";

const HOOK = fileURLToPath(new URL("./helpers/keepalive-hook.py", import.meta.url));
const PAIRS = fileURLToPath(new URL("./helpers/held-pairs.py", import.meta.url));
const HOOK_PORT = 18099;
const CLOSE_ALL = `import { defineRule } from "sockwarden";
export default defineRule({ name: "close-all", on: ["opened", "state-changed"], handle(e, act) {
  if (e.endpoint.protocol === "tcp" && e.endpoint.state === "ESTABLISHED") act.close(e.endpoint, "every connection goes");
} });
`;

let ns: Netns | undefined;
let dir: string;
const running: BackgroundProcess[] = [];

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  ns = await Netns.create("peer");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-peer-"));
  fs.writeFileSync(path.join(dir, "close-all.ts"), CLOSE_ALL);
});

afterEach(async () => {
  for (const p of running.splice(0)) await p.stop();
});

afterAll(async () => {
  await ns?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface AuditLine {
  action: string;
  outcome: string;
  message: string;
  endpoint: { localPort: number; remotePort: number } | null;
}
const readAudit = (file: string): AuditLine[] =>
  fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as AuditLine) : [];

/** Polls `probe` until it gives a value, at most `timeoutMs`; throws saying what it waited for. */

/** Moves every line `p` has printed so far into `into`. */
async function collect(p: BackgroundProcess, into: string[]): Promise<void> {
  for (let i = 0; i < 100_000; i++) {
    try {
      into.push(await p.nextLine(20));
    } catch {
      return;
    }
  }
}

function spawnReady(argv: string[], ready: RegExp): Promise<{ p: BackgroundProcess; line: string }> {
  const p = ns!.spawn(argv);
  running.push(p);
  return p.nextLine(10_000).then((line) => {
    expect(line).toMatch(ready);
    return { p, line };
  });
}

describe.each(["poll", "ebpf"])("run --sensor %s with a close-everything rule", { timeout: 120_000 }, (sensor) => {
  it("leaves the webhook receiver's end of sockwarden's connection open, and the alerts keep arriving", async () => {
    const audit = path.join(dir, `audit-${sensor}.log`);
    const { p: hook } = await spawnReady(["/usr/bin/python3", HOOK, String(HOOK_PORT)], /^ready$/);
    const { p: pairs } = await spawnReady(["/usr/bin/python3", PAIRS], /^ready \d+$/);
    const ask = async () => {
      pairs.child.stdin!.write("connect\n");
      const [, port] = (await pairs.nextLine(10_000)).split(" ");
      return Number(port);
    };
    const daemon = ns!.spawn([
      EXECUTABLE, "run", "--interval", "0.2", "--sensor", sensor, "--rule", path.join(dir, "close-all.ts"), "--audit-log", audit,
      "--sink", `webhook:http://127.0.0.1:${HOOK_PORT}/hook#backoffMs=100&maxBackoffMs=300`,
      // The webhook's spool stays in this test's directory, not in root's /var/lib/sockwarden.
      "--state-dir", path.join(dir, `state-${sensor}`),
    ]);
    running.push(daemon);
    await waitFor(() => `the daemon to start; stderr:\n${daemon.stderr}`, () => (/running /.test(daemon.stderr) ? true : undefined));

    // The first close makes records, and the records make sockwarden connect to the receiver.
    const first = await ask();
    const hookLines: string[] = [];
    const touchingHook = (l: AuditLine) => l.endpoint !== null && (l.endpoint.localPort === HOOK_PORT || l.endpoint.remotePort === HOOK_PORT);
    const decided = await waitFor(
      () => `a decision about the receiver's end; audit:\n${JSON.stringify(readAudit(audit), null, 1)}\ndaemon stderr:\n${daemon.stderr}`,
      () => readAudit(audit).find((l) => l.endpoint?.localPort === HOOK_PORT),
    );
    expect(decided).toMatchObject({ action: "close", outcome: "protected" });
    expect(decided.message).toMatch(new RegExp(`: it is the other end of sockwarden's own connection to 127\\.0\\.0\\.1:${HOOK_PORT} \\(every connection goes\\)$`));

    // Alerts keep arriving: the next close is told over the same connection.
    const second = await ask();
    const records = () => hookLines.filter((l) => l.startsWith("record ")).map((l) => JSON.parse(l.slice(7)) as { endpoint?: { localPort: number; remotePort: number } | null });
    const about = (port: number) => records().some((r) => r.endpoint?.localPort === port || r.endpoint?.remotePort === port);
    await waitFor(() => `the receiver to get the record of the second close; it printed:\n${hookLines.join("\n")}\ndaemon stderr:\n${daemon.stderr}`, async () => {
      await collect(hook, hookLines);
      return about(second) ? true : undefined;
    });
    expect(about(first)).toBe(true);
    // Nothing closed the receiver's end: no connection of it ended other than by the client.
    expect(hookLines.filter((l) => /^end \d+ (?!eof)/.test(l))).toEqual([]);
    expect(readAudit(audit).filter((l) => touchingHook(l) && l.outcome !== "protected")).toEqual([]);
    // The connections the rule was asked about that are not sockwarden's were closed, as asked.
    expect(readAudit(audit).filter((l) => l.endpoint?.localPort === second || l.endpoint?.remotePort === second).map((l) => l.outcome)).toContain("closed");
  });
});
