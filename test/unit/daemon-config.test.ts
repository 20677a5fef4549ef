import { describe, expect, test } from "vitest";
import path from "node:path";
import { ConfigError, lineOf, loadConfig, parseConfig } from "../../src/daemon/config.ts";
import { Protection } from "../../src/daemon/protection.ts";
import { ActionRateLimiter } from "../../src/daemon/rate-limit.ts";
import { Metrics } from "../../src/daemon/metrics.ts";
import { METRICS } from "../../src/daemon/metric-catalogue.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { endpoint, namedProcess } from "../support/endpoints.ts";

const EXAMPLE = path.join(import.meta.dirname, "../../examples/sockwarden.toml");

describe("configuration", () => {
  test("the commented example is a valid configuration", () => {
    const c = loadConfig(EXAMPLE);
    expect(c.rules.sources).toEqual(["smtp-guard", "/etc/sockwarden/rules"]);
    expect(c.rules.options["smtp-guard"]).toEqual({ port: 25, mailServers: ["master", "smtpd", "exim4", "sendmail"] });
    expect(c.protect).toEqual({ ports: [22], addresses: ["10.0.0.0/8", "fd00::/8"], processes: ["sshd", "systemd*"], paths: ["/usr/sbin/sshd"] });
    expect(c.limits).toEqual({ actionsPerMinute: 60, perRule: { "smtp-guard": 10 } });
    expect(c.interval).toBe(1);
    expect(c.kill.graceMs).toBe(3000);
    expect(c.sensor).toBe("auto");
    expect(c.resync).toBe(30);
  });

  test("sensor takes poll, ebpf or auto; auto by default", () => {
    expect(parseConfig("", "f.toml").sensor).toBe("auto");
    for (const choice of ["poll", "ebpf", "auto"]) expect(parseConfig(`sensor = "${choice}"\n`, "f.toml").sensor).toBe(choice);
  });

  test("resync takes 1 to 86400 seconds; 30 by default", () => {
    expect(parseConfig("", "f.toml").resync).toBe(30);
    for (const seconds of [1, 2.5, 86400]) expect(parseConfig(`resync = ${seconds}\n`, "f.toml").resync).toBe(seconds);
  });

  test.each([
    ["interval = 0\n", "f.toml:1: interval: must be a number from 0.1 to 3600"],
    ["dry_run = 1\n", "f.toml:1: dry_run: must be true or false"],
    ["[rules]\nsources = \"x\"\n", "f.toml:2: rules.sources: must be a list of strings"],
    ["[protect]\nports = [22, 70000]\n", "f.toml:2: protect.ports: must be a number from 0 to 65535"],
    ["bogus = 1\n", "f.toml:1: bogus: unknown key"],
    ["[sandbox]\n\nmemory = 5\n", "f.toml:3: sandbox.memory: unknown key"],
    ["[limits.rules.x]\nactions_per_minute = -1\n", "f.toml:2: limits.rules.x.actions_per_minute: must be a number from 0 to 1000000"],
    ["metrics = \"9464\"\n", "f.toml:1: metrics: must be \"HOST:PORT\""],
    ["\nsensor = \"bpf\"\n", "f.toml:2: sensor: must be one of \"poll\", \"ebpf\", \"auto\""],
    ["interval = \n", "f.toml:1: "],
    ["\nresync = 0.5\n", "f.toml:2: resync: must be a number from 1 to 86400"],
    ["resync = 86401\n", "f.toml:1: resync: must be a number from 1 to 86400"],
    ["resync = \"30\"\n", "f.toml:1: resync: must be a number from 1 to 86400"],
  ])("%j is refused with file, line and key", (text, expected) => {
    expect(() => parseConfig(text, "f.toml")).toThrow(ConfigError);
    try {
      parseConfig(text, "f.toml");
    } catch (err) {
      expect((err as Error).message.startsWith(expected)).toBe(true);
      expect((err as ConfigError).exitCode).toBe(2);
    }
  });

  test("lineOf finds keys in tables, dotted keys and headers", () => {
    const text = "a = 1\n[x]\nb = 2\n[x.y]\nc = 3\n[z]\nq.r = 4\n";
    expect(lineOf(text, "a")).toBe(1);
    expect(lineOf(text, "x.b")).toBe(3);
    expect(lineOf(text, "x.y")).toBe(4);
    expect(lineOf(text, "x.y.c")).toBe(5);
    expect(lineOf(text, "z.q.r")).toBe(7);
    expect(lineOf(text, "nowhere")).toBe(1);
  });
});

const ep = (o: Partial<Endpoint>): Endpoint =>
  endpoint({
    localAddress: "192.168.1.5", localPort: 40000, remoteAddress: "93.184.216.34", remotePort: 25, packetsSent: 0, packetsReceived: 0, rttMs: null,
    process: namedProcess(100, "curl"), pids: [100], ...o,
  });

describe("protection", () => {
  const p = new Protection({ ports: [22], addresses: ["10.0.0.0/8"], processes: ["ssh*"], paths: ["/usr/sbin/postfix"] }, 4242);
  test("ports, addresses, names, paths and itself", () => {
    expect(p.closeRefusal(ep({}))).toBeNull();
    expect(p.closeRefusal(ep({ localPort: 22 }))).toMatch(/port 22/);
    expect(p.closeRefusal(ep({ remoteAddress: "10.1.2.3" }))).toMatch(/10\.0\.0\.0\/8/);
    expect(p.closeRefusal(ep({ remoteAddress: "::ffff:10.1.2.3", family: 6 }))).toMatch(/protected/);
    expect(p.closeRefusal(ep({ process: { ...ep({}).process!, name: "sshd" } }))).toMatch(/sshd is protected/);
    expect(p.closeRefusal(ep({ process: { ...ep({}).process!, name: "master", path: "/usr/sbin/postfix" } }))).toMatch(/postfix is protected/);
    expect(p.closeRefusal(ep({ pids: [9, 4242] }))).toMatch(/own socket/);
    expect(p.process({ ...ep({}).process!, pid: 1 })).toMatch(/init/);
  });
});

describe("rate limits", () => {
  test("a sliding minute per rule", () => {
    let now = 0;
    const l = new ActionRateLimiter(2, { strict: 1 }, () => now);
    expect([l.allow("a"), l.allow("a"), l.allow("a")]).toEqual([true, true, false]);
    expect([l.allow("strict"), l.allow("strict")]).toEqual([true, false]);
    now = 60_001;
    expect(l.allow("a")).toBe(true);
  });
});

describe("metrics", () => {
  test("Prometheus text with labels, escaped", () => {
    const m = new Metrics();
    m.inc(METRICS.events, { type: "opened" });
    m.inc(METRICS.events, { type: "opened" }, 2);
    m.set(METRICS.refreshSeconds, {}, 0.25);
    m.replace(METRICS.endpoints, [{ labels: { protocol: "tcp", state: 'A"B' }, value: 3 }]);
    expect(m.render()).toBe(
      [
        "# HELP sockwarden_endpoints Endpoints by protocol and state",
        "# TYPE sockwarden_endpoints gauge",
        'sockwarden_endpoints{protocol="tcp",state="A\\"B"} 3',
        "# HELP sockwarden_events_total Endpoint events seen",
        "# TYPE sockwarden_events_total counter",
        'sockwarden_events_total{type="opened"} 3',
        "# HELP sockwarden_refresh_seconds Duration of the last refresh's processing",
        "# TYPE sockwarden_refresh_seconds gauge",
        "sockwarden_refresh_seconds 0.25",
        "",
      ].join("\n"),
    );
  });
});
