/**
 * /proc and /etc text: /proc/net/{tcp,tcp6,udp,udp6}, /proc/PID/{stat,status,cgroup}, fd and
 * namespace links, /etc/passwd and /etc/hosts, and a whole fake /proc/PID directory read the way
 * `sockwarden proc` reads one. Lines are built field by field to proc(5), then mutated.
 */
import fs from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { parseProcNet } from "../../src/engine/linux/proc-net.ts";
import { AF_INET, AF_INET6 } from "../../src/engine/linux/sock-diag-codec.ts";
import { parseStat, placement, nodeFdLinks, type FdLinkScanner } from "../../src/engine/linux/process-map.ts";
import {
  parseCgroupFile,
  parseNamespaceLink,
  parseStatus,
  readProcessDetails,
  selectCgroupPath,
  unitFromCgroup,
} from "../../src/engine/linux/process-details.ts";
import { containerFromCgroup } from "../../src/engine/linux/container-id.ts";
import { libcFdLinks } from "../../src/engine/linux/fd-links.ts";
import { parsePasswd, UserTable } from "../../src/engine/linux/users.ts";
import { CAP_KILL, CAP_NET_ADMIN, CAP_SYS_PTRACE, hasCapability, parseCapEff } from "../../src/engine/linux/capabilities.ts";
import { parseHosts } from "../../src/net/reverse-dns.ts";
import { hexDigits, joinLines, mutatedText, noise, randomText, repeated, seededString } from "./mutate.ts";
import { scratchDir } from "./scratch.ts";
import { target } from "./target.ts";

const NETLINK_FIXTURES = path.join(import.meta.dirname, "../fixtures/netlink");
const PROC_NET_FIXTURES = ["tcp", "tcp6", "udp", "udp6"].map((n) => fs.readFileSync(path.join(NETLINK_FIXTURES, `proc-net-${n}.txt`), "utf8"));

const decimal = fc.oneof(
  { weight: 4, arbitrary: fc.nat().map(String) },
  { weight: 1, arbitrary: fc.constantFrom("-1", "18446744073709551615", "4294967295", "1e400", "0x10", "", "NaN", "Infinity", "007") },
  { weight: 1, arbitrary: noise },
);

/** Whitespace between fields: usually one space, sometimes a run or a tab. */
const gap = fc.oneof({ weight: 6, arbitrary: fc.constant(" ") }, { weight: 1, arbitrary: fc.constantFrom("  ", "\t", " \t ", "     ") });

function spaced(fields: fc.Arbitrary<string[]>): fc.Arbitrary<string> {
  return fc.tuple(fields, gap, fc.constantFrom("", "  ", " ")).map(([fs_, g, lead]) => lead + fs_.join(g));
}

// ---- /proc/net/tcp* ----

function hexEndpoint(words: number): fc.Arbitrary<string> {
  const address = fc.oneof(
    { weight: 8, arbitrary: hexDigits(words * 8, words * 8) },
    { weight: 1, arbitrary: hexDigits(words * 8, words * 8, false) },
    { weight: 1, arbitrary: hexDigits(0, 40) },
  );
  const port = fc.oneof({ weight: 6, arbitrary: hexDigits(4, 4) }, { weight: 1, arbitrary: hexDigits(0, 9) }, { weight: 1, arbitrary: noise });
  return fc.oneof(
    { weight: 10, arbitrary: fc.tuple(address, port).map(([a, p]) => `${a}:${p}`) },
    { weight: 1, arbitrary: address },
    { weight: 1, arbitrary: fc.tuple(address, port, port).map(([a, p, q]) => `${a}:${p}:${q}`) },
  );
}

function procNetLine(words: number): fc.Arbitrary<string> {
  const fields = fc
    .tuple(
      fc.nat({ max: 99999 }).map((n) => `${n}:`),
      hexEndpoint(words),
      hexEndpoint(words),
      fc.oneof(hexDigits(2, 2), hexDigits(0, 3)),
      fc.oneof(fc.tuple(hexDigits(8, 8), hexDigits(8, 8)).map(([t, r]) => `${t}:${r}`), hexDigits(0, 9), fc.constant("::")),
      fc.tuple(hexDigits(2, 2), hexDigits(8, 8)).map(([t, w]) => `${t}:${w}`),
      hexDigits(8, 8),
      decimal,
      decimal,
      decimal,
      fc.array(fc.oneof(decimal, hexDigits(16, 16)), { maxLength: 8 }),
    )
    .map(([sl, local, remote, st, queues, timer, retransmits, uid, timeout, inode, rest]) => [
      sl, local, remote, st, queues, timer, retransmits, uid, timeout, inode, ...rest,
    ]);
  // Short lines too: fewer than the ten fields the parser needs.
  return spaced(fc.tuple(fields, fc.oneof({ weight: 9, arbitrary: fc.constant(99) }, { weight: 1, arbitrary: fc.nat({ max: 10 }) })).map(([f, keep]) => f.slice(0, keep)));
}

const PROC_NET_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

function procNetText(words: number): fc.Arbitrary<string> {
  const built = joinLines(fc.tuple(fc.oneof(fc.constant(PROC_NET_HEADER), randomText), fc.array(procNetLine(words), { maxLength: 6 })).map(([h, ls]) => [h, ...ls]));
  return fc.oneof(
    { weight: 16, arbitrary: built },
    { weight: 12, arbitrary: mutatedText(built, 3) },
    { weight: 8, arbitrary: mutatedText(fc.constantFrom(...PROC_NET_FIXTURES), 4) },
    { weight: 4, arbitrary: randomText },
    { weight: 1, arbitrary: fc.tuple(fc.constant(PROC_NET_HEADER + "\n"), repeated(procNetLine(words).map((l) => `${l}\n`))).map(([h, b]) => h + b) },
  );
}

export const procNet = target({
  name: "proc-net",
  covers: "parseProcNet (/proc/net/tcp, tcp6, udp, udp6)",
  input: fc.oneof(
    fc.record({ family: fc.constant(AF_INET), text: procNetText(1) }),
    fc.record({ family: fc.constant(AF_INET6), text: procNetText(4) }),
    // A file of the other family's lines: addresses of the wrong width.
    fc.record({ family: fc.constant(AF_INET6), text: procNetText(1) }),
  ),
  decode({ family, text }) {
    for (const r of parseProcNet(text, family, "/proc/net/tcp")) void `${r.source}${r.destination}`;
  },
});

// ---- /proc/PID/stat ----

const comm = fc.oneof(
  fc.string({ maxLength: 16 }),
  fc.constantFrom("nginx", "a b", "(sd-pam)", ") S 1 2 (", "x)", "((", "))", "kworker/0:1-events", "\n"),
  fc.string({ unit: fc.constantFrom(..."() \n)x"), maxLength: 16 }),
);

const statText = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.nat({ max: 4194304 }), comm, fc.constantFrom("R", "S", "D", "Z", "I", "?", ""), fc.array(decimal, { maxLength: 52 }), fc.constantFrom("\n", "", " \n"))
      .map(([pid, name, state, rest, end]) => `${pid} (${name}) ${state} ${rest.join(" ")}${end}`),
  },
  { weight: 2, arbitrary: randomText },
);

export const procStat = target({
  name: "proc-stat",
  covers: "parseStat (/proc/PID/stat)",
  input: fc.oneof({ weight: 12, arbitrary: statText }, { weight: 8, arbitrary: mutatedText(statText) }, { weight: 1, arbitrary: repeated(fc.constantFrom("(", ")", " 1", ") ")) }),
  decode(text) {
    parseStat(text);
  },
});

// ---- /proc/PID/status ----

const STATUS_KEYS = ["Name", "Umask", "State", "Tgid", "Pid", "PPid", "TracerPid", "Uid", "Gid", "FDSize", "Groups", "VmRSS", "Threads", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Seccomp"];

const statusValue = fc.oneof(
  decimal,
  fc.tuple(decimal, decimal, decimal, decimal).map((u) => u.join("\t")),
  fc.constantFrom("S (sleeping)", "R (running)", "I (idle)", "", "   ", "123 kB", "000001ffffffffff", "0000003fffffffff"),
  hexDigits(0, 40),
  noise,
);

const statusLine = fc
  .tuple(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...STATUS_KEYS) }, { weight: 1, arbitrary: noise }), fc.constantFrom(":\t", ":", ": ", ""), statusValue)
  .map(([k, sep, v]) => `${k}${sep}${v}`);

const statusText = joinLines(fc.array(statusLine, { maxLength: 12 }));

export const procStatus = target({
  name: "proc-status",
  covers: "parseStatus, parseCapEff, hasCapability (/proc/PID/status, /proc/self/status)",
  input: fc.oneof(
    { weight: 10, arbitrary: statusText },
    { weight: 6, arbitrary: mutatedText(statusText) },
    { weight: 4, arbitrary: randomText },
    { weight: 1, arbitrary: repeated(fc.constantFrom("CapEff:\t", "f", ":", "\n")) },
  ),
  decode(text) {
    parseStatus(text);
    parseCapEff(text);
    for (const cap of [CAP_KILL, CAP_NET_ADMIN, CAP_SYS_PTRACE]) hasCapability(cap, text);
  },
});

// ---- /proc/PID/cgroup ----

const hex64 = hexDigits(64, 64, false);
const podUid = fc
  .tuple(hexDigits(8, 8, false), hexDigits(4, 4, false), hexDigits(4, 4, false), hexDigits(4, 4, false), hexDigits(12, 12, false))
  .map((parts) => parts.join("-"));

const cgroupComponent = fc.oneof(
  fc.constantFrom(
    "system.slice", "user.slice", "user-1000.slice", "user@1000.service", "app.slice", "init.scope", "session-3.scope",
    "nginx.service", "getty@tty1.service", "_cpu.service", "kubepods", "kubepods.slice", "burstable", "besteffort",
    "docker", "libpod_parent", "machine.slice", "lxc", "lxc.payload.web", "dbus.socket", "-.mount", "x.swap", "..", ".",
  ),
  hex64.map((id) => `docker-${id}.scope`),
  hex64,
  hex64.map((id) => `cri-containerd-${id}.scope`),
  hex64.map((id) => `crio-${id}.scope`),
  hex64.map((id) => `libpod-${id}`),
  podUid.map((u) => `pod${u}`),
  podUid.map((u) => `kubepods-burstable-pod${u.replaceAll("-", "_")}.slice`),
  hex64.map((id) => `cri-containerd:${id}`),
  noise,
  fc.string({ maxLength: 20 }),
);

const cgroupPath = fc.tuple(fc.array(cgroupComponent, { maxLength: 6 }), fc.boolean()).map(([parts, slash]) => `/${parts.join("/")}${slash ? "/" : ""}`);

const cgroupLine = fc
  .tuple(
    fc.oneof(fc.nat({ max: 13 }).map(String), decimal),
    fc.constantFrom("", "name=systemd", "cpu,cpuacct", "memory", "pids", "net_cls,net_prio", "name=systemd,x"),
    fc.oneof({ weight: 6, arbitrary: cgroupPath }, { weight: 1, arbitrary: fc.constant("/") }, { weight: 1, arbitrary: noise }),
  )
  .map(([h, c, p]) => `${h}:${c}:${p}`);

const cgroupText = joinLines(fc.array(cgroupLine, { maxLength: 8 }));

export const procCgroup = target({
  name: "proc-cgroup",
  covers: "parseCgroupFile, selectCgroupPath, unitFromCgroup, containerFromCgroup, placement (/proc/PID/cgroup)",
  input: fc.oneof(
    { weight: 10, arbitrary: cgroupText },
    { weight: 6, arbitrary: mutatedText(cgroupText) },
    { weight: 4, arbitrary: randomText },
    { weight: 1, arbitrary: repeated(fc.constantFrom("pod", "/", ".slice", "pod0/", "docker-", "0::", "@1.service/", "lxc/")).map((p) => `0::${p}`) },
  ),
  decode(text) {
    for (const line of parseCgroupFile(text)) {
      unitFromCgroup(line.path);
      containerFromCgroup(line.path);
    }
    const chosen = selectCgroupPath(text);
    if (chosen !== null) unitFromCgroup(chosen);
    placement(text);
  },
});

// ---- fd and namespace links ----

const linkTarget = fc.oneof(
  { weight: 4, arbitrary: fc.nat().map((n) => `socket:[${n}]`) },
  { weight: 2, arbitrary: fc.oneof(decimal, noise).map((n) => `socket:[${n}]`) },
  { weight: 1, arbitrary: fc.constantFrom("socket:[", "socket:[]", "socket:", "pipe:[12]", "anon_inode:[eventfd]", "/dev/null", "net:[4026531840]", "socket:[99999999999999999999999999999999999999999999999999999999]") },
  { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 70 }) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 200 }) },
);

let libcScanner: FdLinkScanner | null | undefined;

/** The libc scanner the engine prefers, when koffi loads here; null where it does not. */
function libcFdLinksIfAvailable(): FdLinkScanner | null {
  if (libcScanner === undefined) {
    try {
      libcScanner = libcFdLinks();
    } catch {
      libcScanner = null;
    }
  }
  return libcScanner;
}

let fdDir: string | null = null;

function linkDirectory(targets: readonly string[]): string {
  // Made again when the scratch directory was (a test file removes it when done).
  if (fdDir === null || !fdDir.startsWith(scratchDir())) {
    fdDir = path.join(scratchDir(), "fd");
    fs.mkdirSync(fdDir, { recursive: true });
  }
  for (const name of fs.readdirSync(fdDir)) fs.unlinkSync(path.join(fdDir, name));
  targets.forEach((t, i) => {
    // A link target is a C string of at most PATH_MAX bytes: no NUL, not empty.
    const clean = t.replaceAll("\0", "");
    if (clean !== "" && Buffer.byteLength(clean) < 4096) fs.symlinkSync(clean, path.join(fdDir!, String(i)));
  });
  return fdDir;
}

export const fdLinks = target({
  name: "fd-links",
  covers: "nodeFdLinks, libcFdLinks (/proc/PID/fd links), parseNamespaceLink (/proc/PID/ns/net)",
  input: fc.array(linkTarget, { minLength: 1, maxLength: 3 }),
  decode(targets) {
    for (const t of targets) parseNamespaceLink(t);
    const dir = linkDirectory(targets);
    const visit = (pid: number, inode: number) => void (pid + inode);
    nodeFdLinks(dir, 1, visit);
    libcFdLinksIfAvailable()?.(dir, 1, visit);
  },
});

// ---- /etc/passwd, /etc/hosts ----

const passwdLine = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.oneof(fc.constantFrom("root", "nobody", "postfix", "", "#x"), noise), decimal, decimal, fc.string({ maxLength: 12 }))
      .map(([name, uid, gid, gecos]) => `${name}:x:${uid}:${gid}:${gecos}:/home/${name}:/bin/sh`),
  },
  { weight: 1, arbitrary: randomText },
);
const passwdText = joinLines(fc.array(passwdLine, { maxLength: 8 }));

export const passwd = target({
  name: "passwd",
  covers: "parsePasswd (/etc/passwd)",
  input: fc.oneof({ weight: 12, arbitrary: passwdText }, { weight: 8, arbitrary: mutatedText(passwdText) }, { weight: 1, arbitrary: repeated(fc.constantFrom(":", "a:x:1:", "\n")) }),
  decode(text) {
    parsePasswd(text);
  },
});

const hostsAddress = fc.oneof(
  fc.constantFrom("127.0.0.1", "::1", "0.0.0.0", "fe80::1%eth0", "::ffff:10.0.0.1", "192.168.001.1", "[::1]", "1.2.3", "ff02::2"),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join(".")),
  fc.array(hexDigits(0, 4, false), { minLength: 1, maxLength: 9 }).map((g) => g.join(":")),
  noise,
);
const hostName = fc.oneof(fc.constantFrom("localhost", "ip6-localhost", "db.example.net", "-", "x"), seededString("abcdefghijklmnopqrstuvwxyz0123456789.-", 1, 30));
const hostsLine = fc
  .tuple(hostsAddress, fc.array(hostName, { maxLength: 3 }), fc.constantFrom("", " # comment", "#", "\t"))
  .map(([a, names, tail]) => `${a}\t${names.join(" ")}${tail}`);
const hostsText = joinLines(fc.array(hostsLine, { maxLength: 8 }));

export const hosts = target({
  name: "hosts",
  covers: "parseHosts (/etc/hosts, for reverse names)",
  input: fc.oneof({ weight: 3, arbitrary: hostsText }, { weight: 2, arbitrary: mutatedText(hostsText) }, { weight: 1, arbitrary: randomText }),
  decode(text) {
    parseHosts(text);
  },
});

// ---- a whole /proc/PID directory ----

const PID = 4242;

const processFiles = fc.record({
  stat: fc.oneof(statText, mutatedText(statText)),
  status: fc.oneof(statusText, mutatedText(statusText)),
  cgroup: fc.oneof(cgroupText, mutatedText(cgroupText)),
  comm: fc.oneof(comm.map((c) => `${c}\n`), randomText),
  cmdline: fc.oneof(fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }).map((a) => a.join("\0") + "\0"), randomText),
  procStat: fc.oneof(
    decimal.map((b) => `cpu  1 2 3\nbtime ${b}\n`),
    fc.constantFrom("btime 1700000000\n", "btime 99999999999999999999\n", ""),
    randomText,
  ),
  passwd: passwdText,
  missing: fc.oneof({ weight: 9, arbitrary: fc.constant([] as string[]) }, { weight: 1, arbitrary: fc.subarray(["status", "cgroup", "comm", "cmdline"]) }),
});

let procRoot: string | null = null;

type ProcessFiles = typeof processFiles extends fc.Arbitrary<infer T> ? T : never;

function writeProcRoot(files: ProcessFiles): string {
  if (procRoot === null || !procRoot.startsWith(scratchDir())) {
    procRoot = path.join(scratchDir(), "proc");
    const made = path.join(procRoot, String(PID));
    // What does not vary: the executable link, the fd directory and the namespace link.
    fs.mkdirSync(path.join(made, "fd"), { recursive: true });
    fs.mkdirSync(path.join(made, "ns"), { recursive: true });
    fs.symlinkSync("/usr/sbin/nginx", path.join(made, "exe"));
    fs.symlinkSync("socket:[705932]", path.join(made, "fd", "3"));
    fs.symlinkSync("net:[4026531840]", path.join(made, "ns", "net"));
  }
  const dir = path.join(procRoot, String(PID));
  for (const name of ["stat", "status", "cgroup", "comm", "cmdline"] as const) {
    const file = path.join(dir, name);
    if ((files.missing as string[]).includes(name)) fs.rmSync(file, { force: true });
    else fs.writeFileSync(file, files[name]);
  }
  fs.writeFileSync(path.join(procRoot, "stat"), files.procStat);
  fs.writeFileSync(path.join(procRoot, "passwd"), files.passwd);
  return procRoot;
}

export const procProcess = target({
  name: "proc-process",
  covers: "readProcessDetails, ProcessReader over a fake /proc/PID (stat, status, cgroup, comm, cmdline, btime)",
  input: processFiles,
  decode(files) {
    const root = writeProcRoot(files);
    readProcessDetails(PID, root, { users: new UserTable(path.join(root, "passwd")), clockTicks: 100 });
  },
});

export const PROC_TARGETS = [procNet, procStat, procStatus, procCgroup, fdLinks, passwd, hosts, procProcess];
