/**
 * How many processes `sockwarden run` holds for its rules: with the four bundled plugins, by
 * default one rule runner for all of them (the daemon and one child of the same executable), and
 * with `isolation = "per-rule"` one runner each. Counted through /proc: every descendant of the
 * daemon, each checked to be the real executable started as a rule runner. Events flow (a few
 * loopback connections) before and while counting, so that runners started on a call would show.
 *
 * Needs root (a private network namespace) and a built dist/sockwarden.
 */
import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { EXECUTABLE } from "./helpers/sockwarden.ts";
import { daemonTestbed } from "./helpers/daemon.ts";
import { PYTHON } from "./helpers/scenario.ts";

const RUNNER_ARGUMENT = "__sockwarden-rule-runner";
const PLUGINS = ["connection-flood", "new-listener", "outbound-allowlist", "smtp-guard"];

/** Connections on loopback, one every 50 ms, until stdin closes (at most a minute). */
const TRAFFIC = `
import socket, sys, select, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(64)
print("ready", flush=True)
end = time.time() + 60
while time.time() < end:
    r, _, _ = select.select([sys.stdin], [], [], 0.05)
    if r and not sys.stdin.readline(): break
    c = socket.create_connection(srv.getsockname()); a, _ = srv.accept(); c.close(); a.close()
`;

const bed = daemonTestbed("rp", "sw-runner-procs-");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Parent of a live process; null when it is gone or a zombie. */
function parentOf(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return /^[ZX]/.test(f[0]!) ? null : Number(f[1]);
  } catch {
    return null;
  }
}

interface Descendant {
  pid: number;
  exe: string | null;
  argv: string[];
}

/** Every live descendant of `root`. */
function descendants(root: number): Descendant[] {
  const children = new Map<number, number[]>();
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const ppid = parentOf(Number(e));
    if (ppid === null) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
  }
  const out: Descendant[] = [];
  const todo = [...(children.get(root) ?? [])];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    let exe: string | null = null;
    let argv: string[] = [];
    try {
      exe = fs.realpathSync(`/proc/${pid}/exe`);
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    } catch {
      continue;
    }
    out.push({ pid, exe, argv });
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

async function countRunners(sandbox: string): Promise<{ runners: Descendant[]; others: Descendant[] }> {
  const config = path.join(bed.dir, `run-${bed.running.length}-${Date.now()}.toml`);
  fs.writeFileSync(config, `interval = 0.3\n[rules]\nsources = [${PLUGINS.map((p) => JSON.stringify(p)).join(", ")}]\n${sandbox}`);
  const daemon = await bed.startDaemon(["--config", config], 60_000);
  expect(daemon.stderr, "daemon start").toMatch(new RegExp(`sockwarden: running ${PLUGINS.join(", ")} every 0\\.3 s`));
  const real = fs.realpathSync(EXECUTABLE);
  expect(fs.realpathSync(`/proc/${daemon.pid}/exe`)).toBe(real);

  const traffic = bed.ns.spawn([PYTHON, "-c", TRAFFIC]);
  bed.running.push(traffic);
  expect(await traffic.nextLine(15_000)).toBe("ready");
  // The largest count seen over a few seconds of events (the processes that checked each rule
  // before the start are gone by then; a runner started late would be counted).
  let widest: Descendant[] = [];
  for (let i = 0; i < 20; i++) {
    await sleep(150);
    const now = descendants(daemon.pid);
    if (now.length > widest.length) widest = now;
  }
  traffic.closeInput();
  const isRunner = (d: Descendant) => d.exe === real && d.argv.includes(RUNNER_ARGUMENT);
  return { runners: widest.filter(isRunner), others: widest.filter((d) => !isRunner(d)) };
}

describe("rule runner processes under sockwarden run with the four bundled plugins", { timeout: 120_000 }, () => {
  it("are one by default: the daemon and one runner", async () => {
    const { runners, others } = await countRunners("");
    expect(others).toEqual([]);
    expect(runners).toHaveLength(1);
  });

  it("are one per rule with isolation = \"per-rule\"", async () => {
    const { runners, others } = await countRunners(`[sandbox]\nisolation = "per-rule"\n`);
    expect(others).toEqual([]);
    expect(runners).toHaveLength(PLUGINS.length);
  });
});
