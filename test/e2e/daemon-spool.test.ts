/**
 * `sockwarden run` with a webhook or OTLP sink whose receiver is down: the alerts it could not
 * deliver are kept in the state directory at SIGTERM and all arrive once the receiver is up and
 * the daemon starts again (at least once, none lost); the same after SIGKILL, with a line cut
 * short at the end of the spool (skipped, told). A second daemon on the same spool, and a state
 * directory that cannot be made, are refused with one line and exit 2.
 *
 * Needs root (network namespace) and a built dist/sockwarden.
 */
import { beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { EXECUTABLE } from "./helpers/sockwarden.ts";
import { daemonTestbed, stopDaemon } from "./helpers/daemon.ts";
import { waitFor } from "./helpers/wait-for.ts";

const CLIENTS = fileURLToPath(new URL("./helpers/smtp-clients.py", import.meta.url));
const RECEIVER = fileURLToPath(new URL("./helpers/otlp-receiver.ts", import.meta.url));
const ALERTS = 10;
const bed = daemonTestbed("sp", "sw-spool-");

beforeAll(() => {
  fs.writeFileSync(path.join(bed.dir, "every-open.ts"), `import { defineRule } from "sockwarden";
export default defineRule({ name: "every-open", on: ["opened"], handle(e, act) {
  if (e.endpoint.remotePort === 25 && e.endpoint.state === "ESTABLISHED") act.alert("connection from port " + e.endpoint.localPort, "warning");
} });
`);
});

const startDaemon = (args: string[]) => bed.startDaemon(["--interval", "0.3", ...args]);

const cases = [
  { kind: "webhook", port: 7971, spec: (p: number) => `webhook:http://127.0.0.1:${p}/hook#backoffMs=100&maxBackoffMs=300`, message: (r: any) => r.message as string },
  { kind: "otlp", port: 4318, spec: (p: number) => `otlp:http://127.0.0.1:${p}#backoffMs=100&maxBackoffMs=300`, message: (r: any) => r.body.stringValue as string },
];

async function keptAcrossRestart(c: (typeof cases)[number], stop: "SIGTERM" | "SIGKILL"): Promise<void> {
  const state = path.join(bed.dir, `state-${c.kind}-${stop}`);
  const file = path.join(bed.dir, `events-${c.kind}-${stop}.ndjson`);
  const args = [
    "--rule", path.join(bed.dir, "every-open.ts"), "--audit-log", path.join(bed.dir, `audit-${c.kind}-${stop}.log`),
    "--state-dir", state, "--sink", c.spec(c.port), "--sink", `file:${file}`,
  ];
  const first = await startDaemon(args);
  const clients = bed.ns.spawn(["/usr/bin/python3", CLIENTS, "25"]);
  bed.running.push(clients);
  expect(await clients.nextLine(10_000)).toBe("ready");
  const expected: string[] = [];
  for (let i = 0; i < ALERTS; i++) {
    clients.child.stdin!.write(`connect c${i}\n`);
    expected.push(`connection from port ${(await clients.nextLine(10_000)).split(" ")[2]}`);
  }
  // Every alert made (the file sink has it) while nothing listens for the network sink.
  const alertsInFile = () =>
    (fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : []).map((l) => JSON.parse(l)).filter((r) => r.kind === "alert");
  await waitFor(() => `${ALERTS} alerts in ${file}; stderr:\n${first.stderr}`, () => (alertsInFile().length >= ALERTS ? true : undefined));
  if (stop === "SIGTERM") {
    await stopDaemon(first);
    // Told as the sink closes, or, when the stop's two seconds ran out first, on the way out.
    expect(first.stderr).toMatch(new RegExp(`${c.kind}:http://127\\.0\\.0\\.1:${c.port}/\\S*: \\d+ record\\(s\\) not delivered before closing: kept in ${state}/spool/`));
    expect(first.stderr).not.toMatch(/dropped/);
  } else {
    process.kill(first.pid, "SIGKILL");
    expect(await first.waitForExit(10_000)).toBe(true);
    // As if it died in the middle of a line.
    const spool = path.join(state, "spool", fs.readdirSync(path.join(state, "spool"))[0]!);
    const segments = fs.readdirSync(spool).filter((f) => f.endsWith(".ndjson")).sort();
    expect(segments.length).toBeGreaterThan(0);
    fs.appendFileSync(path.join(spool, segments.at(-1)!), '{"time":"2026-12-07T00:00:00.000Z","kind":"al');
  }
  // The connections go, so the next daemon has nothing new to alert on: what arrives is kept.
  await clients.stop();

  const receiver = bed.ns.spawn([process.execPath, RECEIVER, String(c.port)]);
  bed.running.push(receiver);
  expect(await receiver.nextLine(10_000)).toBe("ready");
  const second = await startDaemon(args);
  const got = new Set<string>();
  const end = performance.now() + 30_000;
  while (expected.some((m) => !got.has(m)) && performance.now() < end) {
    const line = await receiver.nextLine(Math.max(1, end - performance.now())).catch(() => "");
    expect(line.startsWith("bad "), line).toBe(false);
    if (line.startsWith("record ")) got.add(c.message(JSON.parse(line.slice(7))));
  }
  expect(expected.filter((m) => !got.has(m)), second.stderr).toEqual([]);
  expect(second.stderr).toMatch(/record\(s\) kept in \S+ from before go out first/);
  if (stop === "SIGKILL") expect(second.stderr).toMatch(/: 1 line\(s\) of the spool in \S+ were cut short or unreadable: skipped/);
  else expect(second.stderr).not.toMatch(/cut short/);
  await stopDaemon(second);
}

describe("sockwarden run: records kept across a restart", { timeout: 180_000 }, () => {
  for (const c of cases) {
    it(`${c.kind}: receiver down, SIGTERM, receiver up, start again: every alert arrives`, () => keptAcrossRestart(c, "SIGTERM"));
  }

  it("webhook: SIGKILL, and a line cut short at the end of the spool: every alert arrives, the cut line told", () => keptAcrossRestart(cases[0]!, "SIGKILL"));

  it("a second daemon on the same spool, and a state directory that cannot be made, are refused: one line, exit 2", async () => {
    const state = path.join(bed.dir, "state-shared");
    const sink = "webhook:http://127.0.0.1:7972/hook";
    const base = ["run", "--rule", path.join(bed.dir, "every-open.ts"), "--audit-log", path.join(bed.dir, "audit-shared.log"), "--sink", sink];
    const first = await startDaemon(base.slice(1).concat(["--state-dir", state]));
    const second = await bed.ns.exec([EXECUTABLE, ...base, "--state-dir", state], { timeoutMs: 20_000 });
    expect(second.code, second.stderr).toBe(2);
    expect(second.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^sockwarden: ${state}/spool/\\S+: the spool of ${sink.replace(/[./]/g, "\\$&")} is in use by another sockwarden \\(PID ${first.pid}\\); give each daemon its own --state-dir$`)),
    ]);
    await stopDaemon(first);

    const blocker = path.join(bed.dir, "not-a-dir");
    fs.writeFileSync(blocker, "");
    const bad = await bed.ns.exec([EXECUTABLE, ...base, "--state-dir", path.join(blocker, "state")], { timeoutMs: 20_000 });
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^sockwarden: .*not-a-dir\/state\/spool\/\S+: the state directory cannot be used \(.*\); give a writable --state-dir$/)]);
  });
});
