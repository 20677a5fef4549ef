/**
 * Type checking through the compiled executable: `rules check` and `rules test` refuse a rule
 * with type errors at file:line:col and exit 1, and pass the bundled plugins. The checker and the
 * ES2023 library it checks against travel inside the executable, so the checks run from a lone
 * copy in an empty directory with an empty environment (no node_modules, no typescript package).
 * Then a rule that limits itself to one unit, container and namespace, as the declarations now
 * allow, sees those fields in `rules test`.
 *
 * Needs dist/sockwarden.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

let dir: string;

/** The lone copy, run in its directory with nothing in the environment. */
function run(args: string[]) {
  const r = spawnSync("env", ["-i", "./sockwarden", ...args], { cwd: dir, encoding: "utf8", timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lines = (text: string) => text.split("\n").filter((l) => l.length > 0);

const BAD = `import { defineRule } from "sockwarden";

export default defineRule({
  name: "port-shout",
  handle(event, act) {
    const port: string = event.endpoint.remotePort;
    act.alert(port.toUpperCase(), "urgent");
  },
});
`;

// Only nginx.service's connections, in the "blue" namespace, from a docker container.
const SCOPED = `import { defineRule } from "sockwarden";

export default defineRule({
  name: "scoped",
  on: ["opened"],
  handle(event, act) {
    const ep = event.endpoint;
    if (ep.process?.unit !== "nginx.service" || ep.namespace?.name !== "blue") return;
    const c = ep.process.container;
    act.log(\`\${ep.process.unit} in \${ep.namespace.name}, \${c ? c.runtime + " " + (c.id ?? "") : "no container"}, rtt \${ep.rttMs}, queues \${ep.receiveQueue}/\${ep.sendQueue}, if \${ep.interfaceIndex}\`);
  },
});
`;

function event(seq: number, unit: string | null, ns: string | null) {
  return JSON.stringify({
    type: "opened", seq, time: 1_763_769_600_000 + seq,
    protocol: "tcp", family: 4, localAddress: "10.0.0.5", localPort: 40000 + seq, remoteAddress: "198.51.100.7", remotePort: 443,
    state: "ESTABLISHED", inode: 1000 + seq, uid: 33, user: "www-data", bytesSent: 1, bytesReceived: 2, packetsSent: 1, packetsReceived: 1,
    process: {
      pid: 500 + seq, name: "nginx", path: "/usr/sbin/nginx", cmdline: "nginx: worker process", uid: 33, user: "www-data",
      startTime: "2026-11-22T07:00:00.000Z", ppid: 1, unit, container: { runtime: "docker", id: "d0cker", pod: null },
    },
    pids: [500 + seq], interfaceIndex: 2, receiveQueue: 0, sendQueue: 17, rttMs: 1.25, cookie: String(9000 + seq),
    namespace: ns === null ? null : { inode: 4026532001, name: ns, container: null },
  });
}

beforeAll(() => {
  requireExecutable();
  dir = mkdtempSync(path.join(tmpdir(), "sockwarden-types-"));
  copyFileSync(EXECUTABLE, path.join(dir, "sockwarden"));
  chmodSync(path.join(dir, "sockwarden"), 0o755);
  writeFileSync(path.join(dir, "bad.ts"), BAD);
  writeFileSync(path.join(dir, "scoped.ts"), SCOPED);
  writeFileSync(path.join(dir, "events.ndjson"), [event(1, "nginx.service", "blue"), event(2, "nginx.service", null), event(3, "sshd.service", "blue")].join("\n") + "\n");
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("type errors through the executable", () => {
  const expected = [
    "bad.ts:6:11: Type 'number' is not assignable to type 'string'.",
    `bad.ts:7:35: Argument of type '"urgent"' is not assignable to parameter of type 'Severity | undefined'.`,
  ];

  it("rules check refuses the rule at file:line:col, one line each, and exits 1", () => {
    const r = run(["rules", "check", "bad.ts"]);
    expect(lines(r.stderr)).toEqual(expected);
    expect(r.stdout).toBe("");
    expect(r.code).toBe(1);
  }, 120_000);

  it("rules test refuses it the same way and runs nothing of it", () => {
    const r = run(["rules", "test", "bad.ts", "--events", "events.ndjson"]);
    expect(lines(r.stderr)).toEqual(expected);
    expect(r.stdout).toBe("");
    expect(r.code).toBe(1);
  }, 120_000);

  it("the bundled plugins and a rule using the whole model pass", () => {
    const r = run(["rules", "check", "smtp-guard", "connection-flood", "new-listener", "outbound-allowlist", "scoped.ts"]);
    expect(r.stderr).toBe("");
    expect(lines(r.stdout).map((l) => l.split(": ok (")[0])).toEqual(["plugin:smtp-guard", "plugin:connection-flood", "plugin:new-listener", "plugin:outbound-allowlist", "scoped.ts"]);
    expect(r.code).toBe(0);
  }, 120_000);
});

describe("a rule limited to one unit, container and namespace", () => {
  it("sees unit, container, namespace, rtt, queues and interface", () => {
    const r = run(["rules", "test", "scoped.ts", "--events", "events.ndjson"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(lines(r.stdout).map((l) => (JSON.parse(l) as { reason: string }).reason)).toEqual([
      "nginx.service in blue, docker d0cker, rtt 1.25, queues 0/17, if 2",
    ]);
  }, 120_000);
});
