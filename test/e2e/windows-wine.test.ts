/**
 * The Windows executable under wine: the same commands and rules as on Linux, on real sockets.
 *
 * Inside a fresh network namespace this makes a wine prefix (scripts/wine/prepare-prefix.sh:
 * the ProcessPrng stand-in Bun's Windows runtime needs under wine 8), holds known sockets from a
 * Linux process and from a Windows program (test/fixtures/windows/wine-peer.c), and runs
 * dist/sockwarden-windows-x64.exe. Under wine, iphlpapi's tables are the namespace's real Linux
 * sockets, so `list -a --json` is compared with `ss`.
 *
 * What wine cannot show: owners (wine reports PID 0 for every socket, so every endpoint is
 * unowned), creation times (always zero), per-connection byte counts (wine 8 has no
 * GetPerTcpConnectionEStats) and closing (wine's SetTcpEntry does nothing and reports success;
 * the engine notices the connection is still there and says so). Elevation is not exercised:
 * wine runs everything as an administrator.
 *
 * Needs root (network namespace), wine64 and mingw-w64 (scripts/system-deps.sh installs them), and builds
 * the Windows executable first unless SOCKWARDEN_E2E_WINDOWS_EXECUTABLE names one.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BackgroundProcess, Netns, describeRun, requireRoot, run } from "./helpers/netns.ts";
import { EXECUTABLE, REPO_ROOT, type JsonEndpoint, parseJsonArray, requireExecutable } from "./helpers/sockwarden.ts";
import { endpointKey, sortedKeys, stableAgainstSs } from "./helpers/compare.ts";
import { PYTHON } from "./helpers/scenario.ts";
import type { SsEntry } from "./helpers/ss.ts";

const WINDOWS_EXECUTABLE =
  process.env.SOCKWARDEN_E2E_WINDOWS_EXECUTABLE || join(REPO_ROOT, "dist", "sockwarden-windows-x64.exe");
const MINGW_GCC = "x86_64-w64-mingw32-gcc";
/** The first start of a prefix (and of a 100 MB executable in it) is slow; later ones ~1 s. */
const WINE_TIMEOUT_MS = 120_000;
const PEER_PORT = 41000;

/** Linux sockets held for the test: a listener with a connection to it, a v6 listener, UDP. */
const LINUX_SOCKETS = `
import json, select, socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
client = socket.create_connection(listener.getsockname())
server, _ = listener.accept()
listener6 = socket.socket(socket.AF_INET6)
listener6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
listener6.bind(("::1", 0))
listener6.listen()
udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp6.bind(("::1", 0))
print(json.dumps({"listen": listener.getsockname()[1], "client": client.getsockname()[1],
                  "listen6": listener6.getsockname()[1], "udp6": udp6.getsockname()[1]}), flush=True)
select.select([sys.stdin], [], [], 240)
`;

interface LinuxPorts {
  listen: number;
  client: number;
  listen6: number;
  udp6: number;
}

let ns: Netns | undefined;
let work = "";
let wine = "";
let linuxSockets: BackgroundProcess | undefined;
let peer: BackgroundProcess | undefined;
let peerPid = 0;
let ports: LinuxPorts;

function wineEnv(): Record<string, string | undefined> {
  return {
    ...process.env,
    WINEPREFIX: join(work, "prefix"),
    WINEDEBUG: "-all",
    WINEDLLOVERRIDES: "mscoree,mshtml=;winemenubuilder.exe=d",
  };
}

/** Runs the Windows executable under wine inside the namespace, from the repository root. */
function sockwardenExe(args: string[]) {
  return ns!.exec([wine, WINDOWS_EXECUTABLE, ...args], { env: wineEnv(), cwd: REPO_ROOT, timeoutMs: WINE_TIMEOUT_MS });
}

function commandExists(name: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => dir !== "" && existsSync(join(dir, name)));
}

beforeAll(async () => {
  requireRoot();
  requireExecutable();
  const haveWine = existsSync("/usr/lib/wine/wine64") || commandExists("wine64") || commandExists("wine");
  if (!haveWine || !commandExists(MINGW_GCC)) {
    throw new Error("the wine test needs wine64 and mingw-w64 (as root, scripts/system-deps.sh test installs them)");
  }
  if (!process.env.SOCKWARDEN_E2E_WINDOWS_EXECUTABLE) {
    const built = await run([process.execPath, "scripts/build.ts", "--target", "windows-x64"], { cwd: REPO_ROOT, timeoutMs: 300_000 });
    if (built.code !== 0) throw new Error(`building the Windows executable failed: ${describeRun(built)}`);
  }
  if (!existsSync(WINDOWS_EXECUTABLE)) throw new Error(`${WINDOWS_EXECUTABLE} does not exist`);

  work = mkdtempSync(join(tmpdir(), "sockwarden-wine-"));
  ns = await Netns.create("w");
  // The prefix is made inside the namespace, so its wineserver (and the driver host that reads
  // the socket tables) sees the namespace's sockets.
  const prepared = await ns.exec(["bash", join(REPO_ROOT, "scripts/wine/prepare-prefix.sh"), join(work, "prefix")], {
    timeoutMs: 480_000,
  });
  if (prepared.code !== 0) throw new Error(`preparing the wine prefix failed: ${describeRun(prepared)}`);
  wine = prepared.stdout.trim().split("\n").pop()!;

  const gcc = await run(
    [MINGW_GCC, "-O2", "-o", join(work, "wine-peer.exe"), join(REPO_ROOT, "test/fixtures/windows/wine-peer.c"), "-lws2_32"],
    { timeoutMs: 120_000 },
  );
  if (gcc.code !== 0) throw new Error(`building wine-peer.exe failed: ${describeRun(gcc)}`);

  linuxSockets = ns.spawn([PYTHON, "-c", LINUX_SOCKETS]);
  ports = JSON.parse(await linuxSockets.nextLine(15_000)) as LinuxPorts;
  peer = ns.spawn([wine, join(work, "wine-peer.exe"), String(PEER_PORT)], { env: wineEnv() });
  const ready = await peer.nextLine(WINE_TIMEOUT_MS);
  const match = /^ready (\d+)\r?$/.exec(ready);
  if (!match) throw new Error(`wine-peer printed ${JSON.stringify(ready)}; stderr: ${peer.stderr}`);
  peerPid = Number(match[1]);
}, 900_000);

afterAll(async () => {
  if (ns && wine) {
    await ns.exec([join(wine, "..", "wineserver"), "-k"], { env: wineEnv(), timeoutMs: 30_000 }).catch(() => undefined);
  }
  await ns?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
}, 120_000);

/** ss's view in the shape the Windows tables can give: UDP rows carry no remote end there. */
function windowsShaped(entries: readonly SsEntry[]) {
  return entries.map((e) =>
    e.protocol === "udp" ? { ...e, remoteAddress: e.family === 4 ? "0.0.0.0" : "::", remotePort: 0 } : e,
  );
}

function find(endpoints: JsonEndpoint[], want: Partial<JsonEndpoint>): JsonEndpoint[] {
  return endpoints.filter((e) => Object.entries(want).every(([k, v]) => e[k as keyof JsonEndpoint] === v));
}

describe("list under wine", () => {
  it("lists the known listeners and connections with the right states and ports, as ss does", async () => {
    const { ss, result } = await stableAgainstSs(ns!, async () => {
      const r = await sockwardenExe(["list", "-a", "--json"]);
      expect(r.code, describeRun(r)).toBe(0);
      return { endpoints: parseJsonArray(r), stderr: r.stderr };
    });
    const endpoints = result.endpoints;

    // The Linux process's sockets.
    expect(find(endpoints, { protocol: "tcp", family: 4, localAddress: "127.0.0.1", localPort: ports.listen, state: "LISTEN" })).toHaveLength(1);
    expect(
      find(endpoints, { protocol: "tcp", localPort: ports.client, remoteAddress: "127.0.0.1", remotePort: ports.listen, state: "ESTABLISHED" }),
    ).toHaveLength(1);
    expect(
      find(endpoints, { protocol: "tcp", localPort: ports.listen, remoteAddress: "127.0.0.1", remotePort: ports.client, state: "ESTABLISHED" }),
    ).toHaveLength(1);
    expect(find(endpoints, { protocol: "tcp", family: 6, localAddress: "::1", localPort: ports.listen6, state: "LISTEN" })).toHaveLength(1);
    expect(find(endpoints, { protocol: "udp", family: 6, localAddress: "::1", localPort: ports.udp6, state: null })).toHaveLength(1);
    // The Windows program's sockets, made through winsock.
    expect(find(endpoints, { protocol: "tcp", family: 4, localAddress: "127.0.0.1", localPort: PEER_PORT, state: "LISTEN" })).toHaveLength(1);
    expect(find(endpoints, { protocol: "tcp", localPort: PEER_PORT, state: "ESTABLISHED" })).toHaveLength(1);
    expect(find(endpoints, { protocol: "tcp", remotePort: PEER_PORT, state: "ESTABLISHED" })).toHaveLength(1);
    expect(find(endpoints, { protocol: "udp", family: 6, localAddress: "::1", localPort: PEER_PORT + 1 })).toHaveLength(1);

    // Everything, exactly as ss saw it before and after.
    expect(sortedKeys(endpoints, endpointKey)).toEqual(sortedKeys(windowsShaped(ss), endpointKey));

    // What wine does not give: owners (PID 0), inodes, cookies, counters; the note says why.
    for (const e of endpoints) {
      expect(e).toMatchObject({ process: null, pids: [], inode: 0, cookie: null, uid: null, bytesSent: null, packetsReceived: null });
    }
    expect(result.stderr).toContain("no per-connection TCP statistics");
  });

  it("applies list's filters the same way", async () => {
    const r = await sockwardenExe(["list", "-t", "-4", "--state", "listen", "--json", "-q"]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr).toBe("");
    const endpoints = parseJsonArray(r);
    expect(endpoints.map((e) => e.localPort).sort((a, b) => a - b)).toEqual([ports.listen, PEER_PORT].sort((a, b) => a - b));
    const byPort = await sockwardenExe(["list", "--port", String(ports.listen), "--json", "-q"]);
    expect(parseJsonArray(byPort).map((e) => `${e.localPort}>${e.remotePort} ${e.state}`).sort()).toEqual(
      [`${ports.client}>${ports.listen} ESTABLISHED`, `${ports.listen}>${ports.client} ESTABLISHED`].sort(),
    );
  });
});

describe("proc under wine", () => {
  it("shows the Windows program's name, path, command line, user and start time", async () => {
    const r = await sockwardenExe(["proc", String(peerPid), "--json", "-q"]);
    expect(r.code, describeRun(r)).toBe(0);
    const doc = JSON.parse(r.stdout) as { process: Record<string, unknown> };
    expect(doc.process).toMatchObject({ pid: peerPid, name: "wine-peer.exe", uid: null });
    expect(String(doc.process.path)).toMatch(/\\wine-peer\.exe$/i);
    expect(String(doc.process.cmdline)).toMatch(new RegExp(`wine-peer\\.exe"? ${PEER_PORT}$`, "i"));
    expect(doc.process.user).toEqual(expect.stringContaining("\\"));
    expect(Date.now() - Date.parse(String(doc.process.startTime))).toBeLessThan(15 * 60_000);
    expect(doc.process.threads).toBeGreaterThanOrEqual(1);
  });
});

describe("rules under wine", () => {
  it("rules test smtp-guard on recorded events prints the same actions as on Linux", async () => {
    const args = ["rules", "test", "smtp-guard", "--events", "test/fixtures/events/smtp.ndjson"];
    const linux = await run([EXECUTABLE, ...args], { cwd: REPO_ROOT, timeoutMs: 60_000 });
    expect(linux.code, describeRun(linux)).toBe(0);
    expect(linux.stdout.trim().split("\n").length).toBeGreaterThan(0);
    const windows = await sockwardenExe(args);
    expect({ code: windows.code, stderr: windows.stderr }).toEqual({ code: linux.code, stderr: linux.stderr });
    expect(windows.stdout).toBe(linux.stdout);
  });
});

describe("close under wine", () => {
  it("reports that the connection is still open: wine's SetTcpEntry does nothing", async () => {
    const audit = join(work, "audit.log");
    const r = await sockwardenExe([
      "close",
      `127.0.0.1:${ports.client}`,
      `127.0.0.1:${ports.listen}`,
      "--audit-log",
      `Z:${audit.replaceAll("/", "\\")}`,
    ]);
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.stderr).toContain("SetTcpEntry reported success but the connection is still open");
    const record = JSON.parse(readFileSync(audit, "utf8").trim().split("\n").pop()!) as Record<string, unknown>;
    expect(record).toMatchObject({ action: "close", outcome: "failed", requestedBy: "cli" });
    const still = await ns!.exec(["ss", "-tanH", "state", "established", `( sport = :${ports.client} )`], { timeoutMs: 10_000 });
    expect(still.stdout.trim().split("\n").filter((l) => l.trim() !== "")).toHaveLength(1);
  });

  it("refuses IPv6 and UDP with the reason Windows gives none", async () => {
    const r = await sockwardenExe(["close", "--local-port", String(ports.udp6), "-u", "--yes"]);
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.stderr).toContain("no way to close a UDP socket");
  });
});
