/**
 * The privilege matrix: the ways sockwarden is run (columns), the features tried in each (rows),
 * how a cell's outcome is written ("works" or "needs CAP_X + CAP_Y"), and the README's copy of
 * the table. privileges.test.ts runs every cell; the README shows what it found.
 */

import type { RunResult } from "./netns.ts";
import { describeRun } from "./netns.ts";

/** Owner of the "other user's" processes and sockets every column is tried against. */
export const TARGET_UID = 4242;
export const NOBODY = 65534;

/** The command prefix that runs something as TARGET_UID. */
export const AS_TARGET = ["setpriv", `--reuid=${TARGET_UID}`, `--regid=${TARGET_UID}`, "--clear-groups"];

const AS_NOBODY = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];

/** The capabilities examples/sockwarden.service grants its dynamic (non-root) user. */
export const UNIT_CAPABILITIES = ["net_admin", "sys_ptrace", "dac_read_search", "kill", "bpf", "perfmon"];

/** Capabilities kept across the uid change as ambient ones, and nothing else in any set. */
function onlyCapabilities(caps: string[]): string[] {
  const list = ["-all", ...caps.map((c) => `+${c}`)].join(",");
  return [...AS_NOBODY, `--inh-caps=${list}`, `--ambient-caps=${list}`, `--bounding-set=${list}`];
}

export interface Column {
  key: string;
  /** The README's column heading. */
  title: string;
  /** Prefix that runs a command this way (inside the test's network namespace). */
  prefix: string[];
  /** What `capsh --print` says on its "Current:" line when run this way. */
  capsh: RegExp;
  /** What /proc/self/uid_map says: the host's identity map, or a user namespace's. */
  uidMap: RegExp;
}

const HOST_UID_MAP = /^\s*0\s+0\s+4294967295\s*$/;

export const COLUMNS: Column[] = [
  { key: "root", title: "root", prefix: [], capsh: /^=ep\b/, uidMap: HOST_UID_MAP },
  {
    key: "unprivileged",
    title: "unprivileged user",
    prefix: [...AS_NOBODY, "--inh-caps=-all"],
    capsh: /^=$/,
    uidMap: HOST_UID_MAP,
  },
  {
    key: "net-admin",
    title: "only CAP_NET_ADMIN",
    prefix: onlyCapabilities(["net_admin"]),
    capsh: /^cap_net_admin=eip$/,
    uidMap: HOST_UID_MAP,
  },
  {
    key: "unit",
    title: "the unit's capabilities",
    prefix: onlyCapabilities(UNIT_CAPABILITIES),
    capsh: /^cap_dac_read_search,cap_kill,cap_net_admin,cap_sys_ptrace,cap_perfmon,cap_bpf=eip$/,
    uidMap: HOST_UID_MAP,
  },
  {
    // Made by an unprivileged user, as rootless containers are: uid 0 inside is nobody outside.
    key: "userns",
    title: "user namespace",
    prefix: [...AS_NOBODY, "--inh-caps=-all", "unshare", "--user", "--map-root-user"],
    capsh: /^=ep$/,
    uidMap: new RegExp(`^\\s*0\\s+${NOBODY}\\s+1\\s*$`),
  },
];

/** The features, in the README's order; the keys name them in the test. */
export const ROWS = [
  { key: "list", title: "`list`: endpoints" },
  { key: "owners", title: "`list`: processes behind other users' sockets" },
  { key: "watch", title: "`watch`, short-lived connections included" },
  { key: "sensor", title: "`watch --sensor ebpf`, tracefs mounted" },
  { key: "sensor-mount", title: "`watch --sensor ebpf`, tracefs not mounted" },
  { key: "close", title: "`close` (sock_diag SOCK_DESTROY)" },
  { key: "close-owner", title: "`close --method owner` (pidfd_getfd)" },
  { key: "kill", title: "ending another user's process (rules' kill, the live view's `K`)" },
  { key: "proc", title: "`proc PID` of another user's process" },
  { key: "all-namespaces", title: "`--all-namespaces`" },
  { key: "run", title: "`run --rule smtp-guard`" },
  { key: "metrics", title: "`run --metrics 127.0.0.1:PORT`, file sink" },
] as const;

export type RowKey = (typeof ROWS)[number]["key"];
export type Matrix = Record<RowKey, Record<string, string>>;

/** Capabilities in the order cells name them. */
const CAPABILITY_ORDER = ["CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_KILL", "CAP_SYS_ADMIN"];

/** Every capability a text names, each once, in CAPABILITY_ORDER (unknown ones last). */
export function capabilitiesNamed(text: string): string[] {
  const found = new Set(text.match(/\bCAP_[A-Z_]+\b/g) ?? []);
  const rank = (c: string) => (CAPABILITY_ORDER.includes(c) ? CAPABILITY_ORDER.indexOf(c) : CAPABILITY_ORDER.length);
  return [...found].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export const WORKS = "works";

/** "needs CAP_A + CAP_B" for a refusal that names them; a cell no table should contain otherwise. */
export function needs(text: string): string {
  const caps = capabilitiesNamed(text);
  return caps.length > 0 ? `needs ${caps.join(" + ")}` : `fails without naming a privilege: ${oneLine(text)}`;
}

function oneLine(text: string): string {
  const t = text.trim().replace(/\s+/g, " ");
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

/** A line of a JavaScript stack trace. */
export const STACK_FRAME = /^\s+at\s|\n\s+at\s/;

/**
 * The cell for a command that was refused: it must exit non-zero with exactly one line on
 * stderr (`sockwarden: ...`) and no stack trace; that line must name what is missing.
 */
export function refusal(result: RunResult): string {
  const lines = result.stderr.split("\n").filter((l) => l.trim() !== "");
  if (result.code === 0 || result.code === null) return `did not fail as expected: ${oneLine(describeRun(result))}`;
  if (lines.length !== 1 || !lines[0]!.startsWith("sockwarden: ") || STACK_FRAME.test(result.stderr)) {
    return `not one plain line on stderr: ${oneLine(describeRun(result))}`;
  }
  return needs(lines[0]!);
}

/** The stderr lines that are notes (`note: ...`). */
export function notes(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("note: "));
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|");
}

/** The matrix as the README's Markdown table. */
export function renderMatrix(matrix: Matrix): string {
  const header = `| feature | ${COLUMNS.map((c) => c.title).join(" | ")} |`;
  const rule = `|---|${COLUMNS.map(() => "---").join("|")}|`;
  const rows = ROWS.map((r) => `| ${escapeCell(r.title)} | ${COLUMNS.map((c) => escapeCell(matrix[r.key][c.key] ?? "?")).join(" | ")} |`);
  return [header, rule, ...rows].join("\n");
}

/** The first table of the README's "### Privileges" section, exactly as written. */
export function readmeMatrix(readme: string): string {
  const start = readme.search(/^### Privileges\s*$/m);
  if (start < 0) throw new Error('README.md has no "### Privileges" section');
  const rest = readme.slice(readme.indexOf("\n", start) + 1);
  const next = rest.search(/^#{2,3} /m);
  const section = next < 0 ? rest : rest.slice(0, next);
  const lines = section.split("\n");
  const first = lines.findIndex((l) => l.startsWith("|"));
  if (first < 0) throw new Error('the "### Privileges" section of README.md has no table');
  const table: string[] = [];
  for (let i = first; i < lines.length && lines[i]!.startsWith("|"); i++) table.push(lines[i]!);
  return table.join("\n");
}

/**
 * Another user's process holding connections (run as TARGET_UID): a listener with PAIRS
 * established pairs on 127.0.0.1, and a second listener for short-lived connections. Prints one
 * JSON line ({pid, port, churnPort, clients}), then answers commands on stdin:
 *   peer I   what the server end of pair I sees: open, eof, or the errno name of a failed read
 *   churn    makes one connection to churnPort and resets both ends at once (no TIME_WAIT);
 *            answers with the client's port
 * Exits on "quit", end of input, or after 10 minutes.
 */
export const HOLDER_PY = String.raw`
import errno, json, os, select, socket, struct, sys, time
n = int(sys.argv[1])
srv = socket.socket()
srv.bind(("127.0.0.1", 0)); srv.listen(64)
port = srv.getsockname()[1]
pairs = []
for _ in range(n):
    c = socket.socket(); c.connect(("127.0.0.1", port)); s, _ = srv.accept()
    pairs.append((c, s))
churn = socket.socket()
churn.bind(("127.0.0.1", 0)); churn.listen(8)
churn_port = churn.getsockname()[1]
print(json.dumps({"pid": os.getpid(), "port": port, "churnPort": churn_port,
                  "clients": [c.getsockname()[1] for c, _ in pairs]}), flush=True)
deadline = time.time() + 600
while time.time() < deadline:
    ready, _, _ = select.select([sys.stdin], [], [], 1)
    if not ready: continue
    line = sys.stdin.readline().strip()
    if not line or line == "quit": break
    cmd, _, arg = line.partition(" ")
    if cmd == "peer":
        s = pairs[int(arg)][1]; s.settimeout(0.3)
        try:
            data = s.recv(16); print("eof" if data == b"" else "data", flush=True)
        except socket.timeout:
            print("open", flush=True)
        except OSError as e:
            print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    elif cmd == "churn":
        c = socket.socket(); c.connect(("127.0.0.1", churn_port)); a, _ = churn.accept()
        client_port = c.getsockname()[1]
        for x in (c, a):
            x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); x.close()
        print(client_port, flush=True)
    else:
        print("unknown", flush=True)
`;

/** What HOLDER_PY prints first. */
export interface Holder {
  pid: number;
  port: number;
  churnPort: number;
  clients: number[];
}

/**
 * Ends one process through src/actions/end-process.ts (what rules' kill and the live view's K
 * use): the process is chosen as it is now (opened and inspected, as the live view does), then
 * ended. Bundled by the test with the sources it imports (paths relative to `repoRoot`) and run
 * by the executable's own runtime (BUN_BE_BUN=1). Exit 0 when it ended, 4 when it was refused
 * (one line on stderr), 1 otherwise.
 */
export function endProcessScript(repoRoot: string): string {
  return `import { endProcess } from ${JSON.stringify(`${repoRoot}/src/actions/end-process.ts`)};
import { openProcess } from ${JSON.stringify(`${repoRoot}/src/engine/index.ts`)};
const pid = Number(process.argv[2]);
const opened = openProcess(pid);
if ("outcome" in opened) {
  console.error("sockwarden: cannot open pid " + pid + ": " + (opened.outcome === "gone" ? "it has exited" : opened.reason));
  process.exit(1);
}
const target = opened.inspect();
opened.close();
if (!target) {
  console.error("sockwarden: pid " + pid + " has exited");
  process.exit(1);
}
const outcome = await endProcess(target, { requestedBy: "privilege matrix", graceMs: 2000 });
if (outcome.ok && outcome.result !== "gone") {
  console.log(outcome.message);
  process.exit(0);
}
console.error("sockwarden: " + outcome.message);
process.exit(outcome.result === "failed" ? 4 : 1);
`;
}

/** A rule whose only job is to put one record into the sinks when the daemon starts. */
export const SINK_CHECK_RULE = `import { defineRule } from "sockwarden";
export default defineRule({
  name: "sink-check",
  on: ["opened"],
  start(endpoints, act) {
    act.alert("sink check: " + endpoints.length + " endpoints at start", "info");
  },
  handle() {},
});
`;
