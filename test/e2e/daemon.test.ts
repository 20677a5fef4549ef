/**
 * `sockwarden run` with real processes in a private namespace: smtp-guard closes a client that is
 * not a mail server within two intervals and leaves one named like a mail server alone; dry run,
 * protection, a broken rule on SIGHUP, and a prompt clean stop.
 *
 * Needs root (network namespace, closing sockets) and a built dist/sockwarden.
 */
import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BackgroundProcess } from "./helpers/netns.ts";
import { EXECUTABLE } from "./helpers/sockwarden.ts";
import { daemonTestbed } from "./helpers/daemon.ts";
import { waitFor } from "./helpers/wait-for.ts";

const CLIENTS = fileURLToPath(new URL("./helpers/smtp-clients.py", import.meta.url));
const INTERVAL = 0.3;
const bed = daemonTestbed("d", "sw-daemon-");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const readAudit = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);

async function startClients(port = 25): Promise<{ p: BackgroundProcess; ask: (cmd: string) => Promise<string> }> {
  const p = bed.ns.spawn(["/usr/bin/python3", CLIENTS, String(port)]);
  bed.running.push(p);
  expect(await p.nextLine(10_000)).toBe("ready");
  return {
    p,
    ask: async (cmd) => {
      p.child.stdin!.write(`${cmd}\n`);
      return p.nextLine(10_000);
    },
  };
}

/**
 * Polls `probe` until it returns a value, at most `timeoutMs`; throws saying what it waited for
 * (`what` is read when the time has run out, so that it can show the daemon's stderr by then).
 */

/** The audit log's lines once it has at least `n`. */
const auditLines = (file: string, n = 1, daemon?: BackgroundProcess) =>
  waitFor(() => `${n} audit line(s) in ${file}${daemon ? `; daemon stderr:\n${daemon.stderr}` : ""}`, () => {
    const lines = readAudit(file);
    return lines.length >= n ? lines : undefined;
  });

const startDaemon = (args: string[]) => bed.startDaemon(["--interval", String(INTERVAL), ...args]);

// Each test waits for the daemon, its clients and its records, each wait bounded; together they
// can outlast the suite's default test time on a loaded machine.
describe("sockwarden run", { timeout: 120_000 }, () => {
  it("smtp-guard closes a non-mail client and leaves a mail server connected", async () => {
    // How soon it closes (within two intervals) is a speed target: bench/run.ts --suite daemon
    // measures it; here the close itself, its audit record and its sink record are checked.
    const audit = path.join(bed.dir, "audit-1.log");
    const daemon = await startDaemon(["--rule", "smtp-guard", "--audit-log", audit, "--sink", "stdout:ndjson"]);
    const clients = await startClients();
    const beforeConnect = Date.now();
    const [, , curlPort] = (await clients.ask("connect curl")).split(" ");
    const connectedAt = performance.now();
    await clients.ask("connect exim4");
    const status = await waitFor(() => `curl's connection to be closed; daemon stderr:\n${daemon.stderr}`, async () => {
      const st = JSON.parse(await clients.ask("status")) as Record<string, string>;
      return st.curl !== "alive" ? st : undefined;
    });
    console.log(`smtp-guard: curl's connection closed ${Math.round(performance.now() - connectedAt)} ms after connect (interval ${INTERVAL * 1000} ms)`);
    expect(status.curl).toMatch(/^broken (ECONNABORTED|ECONNRESET|eof)$/);
    const lines = await auditLines(audit, 1, daemon);
    // Refreshes go on after the close: the mail server's connection is still left alone.
    const refreshesLater = readAudit(audit).length;
    await sleep(3 * INTERVAL * 1000);
    expect(JSON.parse(await clients.ask("status")).exim4).toBe("alive");
    expect(readAudit(audit)).toHaveLength(refreshesLater);
    expect(lines).toHaveLength(1);
    // Found by the refresh loop (two intervals, normally), not after a stall or by chance: a
    // loose bound on the daemon's own record of when it acted, which the test's pace cannot move.
    expect(Date.parse(lines[0].time) - beforeConnect, JSON.stringify(lines[0])).toBeLessThan(10 * INTERVAL * 1000 + 2000);
    expect(lines[0]).toMatchObject({
      action: "close", outcome: "closed", requestedBy: "smtp-guard", reason: "curl is not a mail server",
      endpoint: { protocol: "tcp", localPort: Number(curlPort), remotePort: 25, state: "ESTABLISHED" }, process: { name: "curl" },
    });
    // The sink saw the same action, once: read everything it wrote once the daemon has stopped.
    expect(await daemon.terminate(), `the daemon did not stop; stderr:\n${daemon.stderr}`).toBe(true);
    const records = daemon.remainingLines().map((l) => JSON.parse(l));
    expect(records.filter((r) => r.kind === "action").map((r) => [r.action, r.outcome, r.rule])).toEqual([["close", "closed", "smtp-guard"]]);
  });

  it("--dry-run closes nothing and records what it would have closed", async () => {
    const audit = path.join(bed.dir, "audit-2.log");
    const daemon = await startDaemon(["--rule", "smtp-guard", "--audit-log", audit, "--dry-run", "--sink", "stdout:ndjson"]);
    const clients = await startClients();
    await clients.ask("connect curl");
    await auditLines(audit, 1, daemon);
    await sleep(2 * INTERVAL * 1000);
    expect(JSON.parse(await clients.ask("status")).curl).toBe("alive");
    const lines = readAudit(audit);
    expect(lines.map((l) => [l.action, l.outcome])).toEqual([["would-close", "dry-run"]]);
    expect(lines[0].message).toMatch(/^would close tcp 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:25 \(curl, pid \d+\): curl is not a mail server$/);
  });

  it("never closes a protected endpoint, and says so", async () => {
    const audit = path.join(bed.dir, "audit-3.log");
    const config = path.join(bed.dir, "protect.toml");
    fs.writeFileSync(config, `interval = ${INTERVAL}\naudit_log = "${audit}"\nsinks = ["stdout:ndjson"]\n[rules]\nsources = ["smtp-guard"]\n[protect]\nprocesses = ["cur?"]\n`);
    const daemon = await startDaemon(["--config", config]);
    const clients = await startClients();
    await clients.ask("connect curl");
    await auditLines(audit, 1, daemon);
    await sleep(2 * INTERVAL * 1000);
    expect(JSON.parse(await clients.ask("status")).curl).toBe("alive");
    const lines = readAudit(audit);
    expect(lines.map((l) => [l.action, l.outcome])).toEqual([["close", "protected"]]);
    expect(lines[0].message).toMatch(/process curl is protected/);
  });

  it("SIGHUP with a broken rule is refused (file:line:col) and the old rule keeps working", async () => {
    const audit = path.join(bed.dir, "audit-4.log");
    const rule = path.join(bed.dir, "guard.ts");
    const good = (port: number) => `import { defineRule } from "sockwarden";
export default defineRule({ name: "guard", on: ["opened"], handle(e, act) {
  if (e.endpoint.state === "ESTABLISHED" && e.endpoint.remotePort === ${port}) act.close(e.endpoint, "port ${port}");
} });
`;
    fs.writeFileSync(rule, good(25));
    const config = path.join(bed.dir, "hup.toml");
    fs.writeFileSync(config, `interval = ${INTERVAL}\naudit_log = "${audit}"\n[rules]\nsources = ["${rule}"]\n`);
    const daemon = await startDaemon(["--config", config]);
    // Broken on purpose: the daemon must refuse it and keep the running version.
    fs.writeFileSync(`${rule}.next`, `import { defineRule } from "sockwarden";\nexport default defineRule({ name: "guard", handle( {\n`);
    const brokenConfig = config.replace(".toml", "-broken.toml");
    fs.writeFileSync(brokenConfig, `interval = ${INTERVAL}\naudit_log = "${audit}"\n[rules]\nsources = ["${rule}.next"]\n`);
    fs.copyFileSync(brokenConfig, config);
    process.kill(daemon.pid, "SIGHUP");
    await waitFor(() => `the reload to be refused; stderr:\n${daemon.stderr}`, () => (/reload refused/.test(daemon.stderr) ? true : undefined));
    expect(daemon.stderr).toMatch(/reload refused, the running configuration continues: .*guard\.ts\.next:2:\d+: /);
    const clients = await startClients();
    await clients.ask("connect curl");
    const state = await waitFor(() => `curl's connection to be closed by the old rule; stderr:\n${daemon.stderr}`, async () => {
      const st = JSON.parse(await clients.ask("status")).curl as string;
      return st !== "alive" ? st : undefined;
    });
    expect(state).toMatch(/^broken/);
    expect((await auditLines(audit, 1, daemon)).map((l) => [l.requestedBy, l.outcome])).toEqual([["guard", "closed"]]);
  });

  it("stops cleanly on SIGTERM, with exit status 0", async () => {
    const daemon = await startDaemon(["--rule", "smtp-guard", "--audit-log", path.join(bed.dir, "audit-5.log")]);
    process.kill(daemon.pid, "SIGTERM");
    // Five seconds only catch a stop that hangs. The stop's own bound (1.9 s whatever the sinks
    // do) is checked on fake time: test/unit/supervisor.test.ts, "a stop whose outputs never let
    // go ends at the deadline".
    expect(await daemon.waitForExit(5000), daemon.stderr).toBe(true);
    expect(daemon.child.exitCode).toBe(0);
  });

  it("a configuration error names the file, the line and the key; exit 2", async () => {
    const config = path.join(bed.dir, "bad.toml");
    fs.writeFileSync(config, `interval = 1\n[rules]\nsources = ["smtp-guard"]\n[protect]\nports = [22]\naddreses = ["10.0.0.0/8"]\n`);
    const r = await bed.ns.exec([EXECUTABLE, "run", "--config", config], { timeoutMs: 10_000 });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`sockwarden: ${config}:6: protect.addreses: unknown key (known: ports, addresses, processes, paths)`);
  });
});

describe("sockwarden run sinks", { timeout: 120_000 }, () => {
  it("a webhook that is down for a while gets every alert once it is back; a rotating file keeps every line", async () => {
    const rule = path.join(bed.dir, "every-open.ts");
    fs.writeFileSync(rule, `import { defineRule } from "sockwarden";
export default defineRule({ name: "every-open", on: ["opened"], handle(e, act) {
  if (e.endpoint.remotePort === 25 && e.endpoint.state === "ESTABLISHED") act.alert("connection from port " + e.endpoint.localPort, "info");
} });
`);
    const file = path.join(bed.dir, "events.ndjson");
    const hookPort = 7960;
    const daemon = await startDaemon([
      "--rule", rule, "--audit-log", path.join(bed.dir, "audit-6.log"), "--state-dir", path.join(bed.dir, "state-6"),
      "--sink", `webhook:http://127.0.0.1:${hookPort}/hook#queueSize=1000&backoffMs=100&maxBackoffMs=300`,
      "--sink", `file:${file}?maxBytes=2000&keep=100`,
    ]);
    const clients = await startClients();
    const ports: string[] = [];
    for (let i = 0; i < 20; i++) ports.push((await clients.ask(`connect c${i}`)).split(" ")[2]!);
    // Every alert is made while nothing listens for the webhook: the file sink has them all.
    const alertsInFiles = () =>
      fs.readdirSync(bed.dir).filter((f) => f === "events.ndjson" || f.startsWith("events.ndjson."))
        .flatMap((f) => fs.readFileSync(path.join(bed.dir, f), "utf8").trim().split("\n").filter(Boolean)).map((l) => JSON.parse(l))
        .filter((l) => l.kind === "alert");
    await waitFor(() => `20 alerts in the file sink; stderr:\n${daemon.stderr}`, () => (alertsInFiles().length >= 20 ? true : undefined));
    const hook = bed.ns.spawn(["/usr/bin/python3", fileURLToPath(new URL("./helpers/hook-server.py", import.meta.url)), String(hookPort)]);
    bed.running.push(hook);
    expect(await hook.nextLine(10_000)).toBe("ready");
    const received: { message: string }[] = [];
    const end = performance.now() + 30_000;
    while (received.length < 20 && performance.now() < end) {
      try {
        const line = await hook.nextLine(Math.max(1, end - performance.now()));
        if (line.startsWith("record ")) received.push(JSON.parse(line.slice(7)));
      } catch {
        break;
      }
    }
    const expected = ports.map((p) => `connection from port ${p}`).sort();
    expect(received.map((r) => r.message).sort()).toEqual(expected);
    // No duplicates after the outage, and the file sink across rotations has every alert once.
    await sleep(500);
    const files = fs.readdirSync(bed.dir).filter((f) => f === "events.ndjson" || f.startsWith("events.ndjson."));
    expect(files.length).toBeGreaterThan(1);
    expect(alertsInFiles().map((l) => l.message).sort()).toEqual(expected);
    expect(daemon.hasExited).toBe(false);
  });
});

describe("sockwarden run metrics", { timeout: 120_000 }, () => {
  it("serves Prometheus text: events, actions by rule and outcome, endpoints by state, sinks", async () => {
    const audit = path.join(bed.dir, "audit-7.log");
    const daemon = await startDaemon(["--rule", "smtp-guard", "--audit-log", audit, "--metrics", "127.0.0.1:9464", "--sink", `file:${path.join(bed.dir, "m.ndjson")}`]);
    const clients = await startClients();
    await clients.ask("connect curl");
    // Scraped once the close has been audited (the counter is bumped with the audit record) and
    // the file sink has written its record of it (its queue is empty again).
    await auditLines(audit, 1, daemon);
    const scrape = async () => {
      const r = await bed.ns.exec(["/usr/bin/python3", "-c", "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=5).read().decode())"], { timeoutMs: 10_000 });
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    let text = await scrape();
    const settleBy = performance.now() + 15_000;
    // The endpoint gauges are counted at refreshes: with the sensor the close can come before the
    // first refresh that saw the metrics server's listener.
    const unsettled = (t: string) => /^sockwarden_sink_queue_depth\{[^}]*\} [1-9]/m.test(t) || !/^sockwarden_endpoints\{protocol="tcp",state="LISTEN"\} 2$/m.test(t);
    while (unsettled(text) && performance.now() < settleBy) {
      await sleep(100);
      text = await scrape();
    }
    expect(text).toMatch(/^# TYPE sockwarden_events_total counter$/m);
    expect(text).toMatch(/^sockwarden_events_total\{type="opened"\} [1-9]\d*$/m);
    expect(text).toMatch(/^sockwarden_actions_total\{rule="smtp-guard",action="close",outcome="closed"\} 1$/m);
    // The port-25 listener and the metrics server's own.
    expect(text).toMatch(/^sockwarden_endpoints\{protocol="tcp",state="LISTEN"\} 2$/m);
    expect(text).toMatch(/^# TYPE sockwarden_sink_dropped_total counter$/m);
    expect(text).toMatch(/^sockwarden_sink_queue_depth\{sink="file:[^"]*m\.ndjson"\} 0$/m);
    expect(text).toMatch(/^sockwarden_refresh_seconds \d/m);
  });
});
